package engine

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/dsl"
	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
	"sota/wire"
)

func TestUpdateRecordKeepsActionIDAndFlags(t *testing.T) {
	r := updRec{Req: newUUIDs(1)[0], Status: InFlight, Created: 1, Updated: 2, Action: 1 << 40, Flags: flagCancelRequested | flagConfirmed,
		Install: []resolver.PackageID{{Name: "nav", Version: "2.0.0"}}}
	b := encodeUpd(&r)
	var got updRec
	require.NoError(t, decodeUpd(b, &got))
	assert.Equal(t, r, got)
	legacy := r
	legacy.Action, legacy.Flags = 0, 0
	lb := encodeUpd(&legacy)
	assert.True(t, bytes.HasPrefix(b, lb), "the action id and flags follow the earlier format, so older records decode with neither")
	require.NoError(t, decodeUpd(lb, &got))
	assert.Equal(t, legacy, got)
	require.Error(t, decodeUpd(b[:len(b)-1], &got), "an action id without its flags byte is corrupt")
}

// openPair opens a store, resolver and engine on dir (for restarts).
func openPair(t *testing.T, dir string) (*store.DB, *resolver.Service, *Service) {
	t.Helper()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	res, err := resolver.New(db)
	require.NoError(t, err)
	s, err := New(db, res, Options{DataDir: dir})
	require.NoError(t, err)
	return db, res, s
}

func TestActionIDsAreDecimalPerUpdateAndStableAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	db, res, s := openPair(t, dir)
	for _, v := range []string{vinA, vinB} {
		require.NoError(t, res.PutVehicle(v))
	}
	p := pkg("nav", "1.0.0")
	_, err := res.PutPackage(p, resolver.PackageInfo{})
	require.NoError(t, err)
	queueDirect(t, s, p, 10, nil, vinA, vinB)

	ua, ok, err := s.NextAction(vinA)
	require.NoError(t, err)
	require.True(t, ok)
	ub, ok, err := s.NextAction(vinB)
	require.NoError(t, err)
	require.True(t, ok)
	require.NotZero(t, ua.ActionID)
	assert.NotEqual(t, ua.ActionID, ub.ActionID)
	again, _, err := s.NextAction(vinA)
	require.NoError(t, err)
	assert.Equal(t, ua.ActionID, again.ActionID, "assigned once")

	got, err := s.UpdateByAction(vinA, ua.ActionID)
	require.NoError(t, err)
	assert.Equal(t, ua.ID, got.ID)
	_, err = s.UpdateByAction(vinB, ua.ActionID)
	assert.ErrorContains(t, err, "does not exist for this vehicle", "another vehicle's action is unknown")
	_, err = ParseActionID("12x")
	assert.ErrorContains(t, err, "does not exist")

	require.NoError(t, db.Close())
	db, res, s = openPair(t, dir)
	defer db.Close()
	got, err = s.UpdateByAction(vinA, ua.ActionID)
	require.NoError(t, err)
	assert.Equal(t, ua.ID, got.ID)
	after, _, err := s.NextAction(vinA)
	require.NoError(t, err)
	assert.Equal(t, ua.ActionID, after.ActionID)

	// a new update after the restart gets an id no earlier one had
	require.NoError(t, res.PutVehicle(vinC))
	queueDirect(t, s, p, 10, nil, vinC)
	uc, _, err := s.NextAction(vinC)
	require.NoError(t, err)
	assert.Greater(t, uc.ActionID, max(ua.ActionID, ub.ActionID))
}

const vinC = "WDD33333333333333"

func TestUploadComputesSHA1MD5AndKeepsTheFileName(t *testing.T) {
	s, _ := newTestService(t, Options{})
	content := []byte("an image of the root file system")
	b, err := s.UploadBinary(pkg("rootfs", "1.0.0"), bytes.NewReader(content), Upload{FileName: `C:\builds\rootfs-1.0.0.swu`})
	require.NoError(t, err)
	s1, m5 := sha1.Sum(content), md5.Sum(content)
	assert.Equal(t, hex.EncodeToString(s1[:]), b.SHA1)
	assert.Equal(t, hex.EncodeToString(m5[:]), b.MD5)
	assert.Equal(t, "rootfs-1.0.0.swu", b.FileName, "the last element of the given name")

	// a binary recorded before sha1 and md5 existed gets them on first use, durably
	require.NoError(t, s.update(func(tx store.Txn) error {
		old := b
		old.SHA1, old.MD5 = "", ""
		return s.setBinary(tx, old)
	}))
	a, err := s.Artifact(pkg("rootfs", "1.0.0"))
	require.NoError(t, err)
	assert.Equal(t, b.SHA1, a.SHA1)
	assert.Equal(t, b.MD5, a.MD5)
	stored, ok, err := s.Binary(pkg("rootfs", "1.0.0"))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, b.MD5, stored.MD5)
}

func TestCancelInFlightAsksDDIDevicesAndCancelsOthersAtOnce(t *testing.T) {
	s, _ := newTestService(t, Options{})
	for _, v := range []string{vinA, vinB, vinC} {
		require.NoError(t, s.res.PutVehicle(v))
	}
	p := pkg("nav", "1.0.0")
	_, err := s.UploadBinary(p, bytes.NewReader([]byte("nav")), Upload{})
	require.NoError(t, err)
	r := queueDirect(t, s, p, 10, nil, vinA, vinB, vinC)
	ua, _, err := s.NextAction(vinA) // a DDI device
	require.NoError(t, err)
	_, err = s.MarkInFlight(vinA, ua.ID, "")
	require.NoError(t, err)
	ub := updateIDFor(r.ID, vinB) // a device-API vehicle
	_, err = s.StartTransfer(vinB, ub, 2)
	require.NoError(t, err)

	n, err := s.CancelInFlight(r.ID)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "C pending, A and B in flight")
	got, err := s.Request(r.ID)
	require.NoError(t, err)
	assert.Equal(t, Counts{InFlight: 1, Canceled: 2}, *got.Counts, "A waits for its device's answer")

	_, _, err = s.NextChunk(vinB, ub)
	assert.ErrorContains(t, err, "nav-1.0.0 was canceled")
	_, err = s.AckChunks(vinB, ub, []int{1})
	assert.ErrorContains(t, err, "was canceled")
	_, _, err = s.InstallReport(vinB, ub, []OperationResult{{ID: ub, ResultCode: 0}})
	assert.ErrorContains(t, err, "was canceled")

	next, ok, err := s.NextAction(vinA)
	require.NoError(t, err)
	require.True(t, ok)
	assert.True(t, next.CancelRequested)
	// the device refuses: the update goes on
	u, err := s.AnswerCancel(vinA, ua.ID, false, "already flashing")
	require.NoError(t, err)
	assert.Equal(t, InFlight, u.Status)
	assert.False(t, u.CancelRequested)
	_, err = s.AnswerCancel(vinA, ua.ID, true, "")
	assert.ErrorContains(t, err, "no cancel request")
	// canceled again, and this time accepted
	n, err = s.CancelInFlight(r.ID)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	u, err = s.AnswerCancel(vinA, ua.ID, true, "cancellation acknowledged.")
	require.NoError(t, err)
	assert.Equal(t, Canceled, u.Status)
	assert.Equal(t, "canceled in flight: cancellation acknowledged.", u.ResultText)
	assert.False(t, u.CancelRequested)
	_, ok, err = s.NextAction(vinA)
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestConfirmationGatesTheDownload(t *testing.T) {
	s, _ := newTestService(t, Options{})
	require.NoError(t, s.res.PutVehicle(vinA))
	require.NoError(t, s.res.PutVehicle(vinB))
	p := pkg("nav", "1.0.0")
	_, err := s.UploadBinary(p, bytes.NewReader([]byte("nav")), Upload{})
	require.NoError(t, err)
	r := &UpdateRequest{ID: newUUIDs(1)[0], Kind: KindInstall, PackageID: &p, Priority: 10, RequestConfirmation: true, CreatedAt: s.now()}
	require.NoError(t, s.persist(r, []resolver.Target{{VIN: vinA, Install: []resolver.PackageID{p}}, {VIN: vinB, Install: []resolver.PackageID{p}}}))
	ua, ub := updateIDFor(r.ID, vinA), updateIDFor(r.ID, vinB)

	_, _, err = s.OpenArtifact(vinA, p)
	assert.ErrorContains(t, err, "waits for the device's confirmation")
	u, err := s.Confirm(vinA, ua, true, "")
	require.NoError(t, err)
	assert.True(t, u.Confirmed)
	f, _, err := s.OpenArtifact(vinA, p)
	require.NoError(t, err)
	body, _ := io.ReadAll(f)
	f.Close()
	assert.Equal(t, "nav", string(body))
	us, err := s.Queue(vinA)
	require.NoError(t, err)
	assert.Equal(t, InFlight, us[0].Status, "the download started it")

	u, err = s.Confirm(vinB, ub, false, "driver said no")
	require.NoError(t, err)
	assert.Equal(t, Failed, u.Status)
	assert.Equal(t, wire.ResultUserDeclined, *u.ResultCode)
	assert.Equal(t, "USER_DECLINED: driver said no", u.ResultText)
	_, _, err = s.OpenArtifact(vinB, p)
	assert.ErrorContains(t, err, "No update of this vehicle installs nav-1.0.0")
}

func TestReportConfigMergesReplacesAndRemovesTheDevicesKeysOnly(t *testing.T) {
	s, _ := newTestService(t, Options{})
	require.NoError(t, s.res.PutVehicle(vinA))
	_, err := s.res.SetAttributes(vinA, resolver.Attributes{"fleet": {Str: "north"}})
	require.NoError(t, err)
	ok, err := s.ConfigReported(vinA)
	require.NoError(t, err)
	assert.False(t, ok, "attributes an admin set do not count")

	str := func(v string) dsl.Value { return dsl.Value{Str: v} }
	a, err := s.ReportConfig(vinA, "", resolver.Attributes{"hw": str("rev2"), "board": str("imx8")})
	require.NoError(t, err)
	assert.Equal(t, resolver.Attributes{"fleet": str("north"), "hw": str("rev2"), "board": str("imx8")}, a)
	ok, err = s.ConfigReported(vinA)
	require.NoError(t, err)
	assert.True(t, ok)

	a, err = s.ReportConfig(vinA, ConfigReplace, resolver.Attributes{"hw": str("rev3")})
	require.NoError(t, err)
	assert.Equal(t, resolver.Attributes{"fleet": str("north"), "hw": str("rev3")}, a, "board went, fleet (an admin's) stays")

	a, err = s.ReportConfig(vinA, ConfigRemove, resolver.Attributes{"hw": str("")})
	require.NoError(t, err)
	assert.Equal(t, resolver.Attributes{"fleet": str("north")}, a)

	_, err = s.ReportConfig(vinA, "append", resolver.Attributes{"x": str("1")})
	assert.ErrorContains(t, err, "mode must be merge, replace or remove")
	_, err = s.ReportConfig(vinA, "", resolver.Attributes{"bad key": str("1")})
	assert.ErrorContains(t, err, "Invalid attribute name")
	v, err := s.res.GetVehicle(vinA)
	require.NoError(t, err)
	assert.Equal(t, resolver.Attributes{"fleet": str("north")}, v.Attributes, "a refused report changes nothing")

	require.NoError(t, s.res.DeleteVehicle(vinA))
	require.NoError(t, s.res.PutVehicle(vinA))
	ok, err = s.ConfigReported(vinA)
	require.NoError(t, err)
	assert.False(t, ok, "a vehicle deleted and created again has reported nothing")
}
