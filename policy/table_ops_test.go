package policy

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/errs"
	"sota/internal/storetest"
	"sota/store"
)

func TestSnapshot(t *testing.T) {
	local := PreloadedTable()
	before := string(local.MarshalIndent())
	pts := MakeSnapshot(local, SnapshotInfo{VIN: "WDD1234567890ABCD", Language: "EN-US", Apps: []string{"123", "default"}, DeviceID: "dev-1"})

	assert.Equal(t, before, string(local.MarshalIndent()), "the local table is not modified")
	cfm := pts.Section("consumer_friendly_messages")
	assert.NotContains(t, cfm, "messages", "requirement 2: a snapshot never carries messages")
	assert.Equal(t, "001.001.021", cfm["version"])
	r := Validate(Snapshot, pts)
	assert.True(t, r.Valid, "%v", r.Errors)

	assert.Equal(t, "WDD1234567890ABCD", pts.Section("module_meta")["vin"])
	assert.Contains(t, pts.Section("device_data"), "dev-1")
	assert.Contains(t, obj(pts.Section("usage_and_error_counts")["app_level"]), "123")
	assert.Equal(t, "default", pts.Section("app_policies")["123"], "a newly registered app asks for its policy")
	assert.IsType(t, map[string]any{}, pts.Section("app_policies")["default"], "existing entries stay")
	assert.NotContains(t, pts.Section("vehicle_data"), "schema_items")
	assert.Equal(t, "0.0.0", pts.Section("vehicle_data")["schema_version"])
	require.NoError(t, CheckSnapshot(pts))

	// a snapshot of a table that has a messages-free cfm, and of a snapshot, still has no messages
	again := MakeSnapshot(pts, SnapshotInfo{})
	assert.NotContains(t, again.Section("consumer_friendly_messages"), "messages")
	assert.True(t, Validate(Snapshot, again).Valid)
}

func TestMerge(t *testing.T) {
	local := PreloadedTable()
	before := string(local.MarshalIndent())

	t.Run("PTU with messages replaces the four sections", func(t *testing.T) {
		ptu := loadTable(t, validPTUFile)
		merged, r := Merge(local, ptu)
		require.True(t, r.Valid, "%v", r.Errors)
		assert.Equal(t, before, string(local.MarshalIndent()))
		assert.Equal(t, ptu.Section("module_config")["endpoints"], merged.Section("module_config")["endpoints"])
		assert.NotContains(t, merged.Section("module_config"), "preloaded_pt")
		assert.Equal(t, ptu.Body()["functional_groupings"], merged.Body()["functional_groupings"])
		assert.Contains(t, merged.Section("app_policies"), "123456")
		assert.Equal(t, "001.001.023", merged.Section("consumer_friendly_messages")["version"])
		assert.Equal(t, local.Body()["vehicle_data"], merged.Body()["vehicle_data"], "no vehicle_data in the PTU: kept")
	})
	t.Run("PTU without messages keeps the local messages", func(t *testing.T) {
		ptu := loadTable(t, validPTUFile)
		delete(ptu.Section("consumer_friendly_messages"), "messages")
		merged, r := Merge(local, ptu)
		require.True(t, r.Valid, "%v", r.Errors)
		assert.Equal(t, local.Body()["consumer_friendly_messages"], merged.Body()["consumer_friendly_messages"])
		assert.Len(t, obj(merged.Section("consumer_friendly_messages")["messages"]), 19)
	})
	t.Run("PTU without consumer_friendly_messages keeps the local section", func(t *testing.T) {
		ptu := loadTable(t, validPTUFile)
		delete(ptu.Body(), "consumer_friendly_messages")
		merged, r := Merge(local, ptu)
		require.True(t, r.Valid, "%v", r.Errors)
		assert.Equal(t, local.Body()["consumer_friendly_messages"], merged.Body()["consumer_friendly_messages"])
	})
	t.Run("invalid PTU changes nothing", func(t *testing.T) {
		merged, r := Merge(local, loadTable(t, invalidPTUFile))
		assert.False(t, r.Valid)
		assert.Equal(t, before, string(merged.MarshalIndent()))
	})
	t.Run("dropped values do not reach the local table", func(t *testing.T) {
		ptu := loadTable(t, validPTUFile)
		merged, r := Merge(local, ptu)
		require.True(t, r.Valid)
		assert.NotContains(t, obj(merged.Section("module_config")["subtle_notifications_per_minute_by_priority"]), "PROJECTION")
	})
}

func TestBuildPTU(t *testing.T) {
	master := DefaultMaster()
	r := Validate(Update, master)
	require.True(t, r.Valid, "%v", r.Errors)
	assert.Empty(t, r.Warnings, "the default master has nothing Core would drop")

	pts := MakeSnapshot(PreloadedTable(), SnapshotInfo{Apps: []string{"123"}})
	ptu, err := BuildPTU(master, pts)
	require.NoError(t, err)
	r = Validate(Update, ptu)
	assert.True(t, r.Valid, "a PTU built from the preloaded table validates as a PTU: %v", r.Errors)
	apps := ptu.Section("app_policies")
	assert.ElementsMatch(t, []string{"default", "device", "pre_DataConsent", "123"}, sortedKeys(apps))
	assert.Equal(t, "default", apps["123"], "unknown app gets default")
	assert.NotContains(t, ptu.Section("consumer_friendly_messages"), "messages", "same version: the head unit keeps its messages")
	assert.NotContains(t, ptu.Body(), "vehicle_data", "same schema version")

	// a head unit with older messages gets them; a known app gets its own policy
	old := pts.Clone()
	old.Section("consumer_friendly_messages")["version"] = "000.000.001"
	own := master.Clone()
	own.Section("app_policies")["123"] = map[string]any{"groups": []any{"Location-1"}, "priority": "NORMAL", "default_hmi": "NONE", "keep_context": false, "steal_focus": false}
	ptu, err = BuildPTU(own, old)
	require.NoError(t, err)
	assert.Len(t, obj(ptu.Section("consumer_friendly_messages")["messages"]), 19)
	assert.Equal(t, []any{"Location-1"}, obj(ptu.Section("app_policies")["123"])["groups"])
	assert.True(t, Validate(Update, ptu).Valid)

	merged, r := Merge(PreloadedTable(), ptu)
	require.True(t, r.Valid)
	assert.Equal(t, []any{"Location-1"}, obj(merged.Section("app_policies")["123"])["groups"])
}

func TestCheckSnapshotNamesTheMissingSection(t *testing.T) {
	err := CheckSnapshot(PreloadedTable())
	require.Error(t, err)
	e, ok := errs.As(err)
	require.True(t, ok)
	assert.Equal(t, errs.Invalid, e.Kind)
	assert.Equal(t, "Please provide device data information", e.Details["error"])
	e, ok = errs.As(CheckSnapshot(Table{"data": []any{}}))
	require.True(t, ok)
	assert.Equal(t, "invalid_snapshot", e.Code)
	assert.Equal(t, "Please provide policy table information", e.Description)
}

func openStore(t *testing.T, dir string) *store.DB {
	db, err := storetest.OpenDir(t, dir)
	require.NoError(t, err)
	return db
}

func TestServiceMasterTables(t *testing.T) {
	dir := t.TempDir()
	db := openStore(t, dir)
	svc := NewService(db)

	for _, env := range Environments {
		m, err := svc.Master(env)
		require.NoError(t, err)
		assert.Equal(t, string(DefaultMaster().MarshalIndent()), string(m.MarshalIndent()), env)
	}
	_, err := svc.Master("testing")
	assert.True(t, errs.Is(err, "unknown_environment"))

	bad := loadTable(t, invalidPTUFile)
	r, err := svc.PutMaster("staging", bad)
	require.Error(t, err)
	e, _ := errs.As(err)
	assert.Equal(t, errs.Unacceptable, e.Kind)
	assert.Equal(t, r.Errors, e.Details["errors"])
	m, err := svc.Master("staging")
	require.NoError(t, err)
	assert.Equal(t, string(DefaultMaster().MarshalIndent()), string(m.MarshalIndent()), "a rejected PUT changes nothing")

	good := loadTable(t, validPTUFile)
	_, err = svc.PutMaster("staging", good)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	db = openStore(t, dir)
	defer db.Close()
	svc = NewService(db)
	m, err = svc.Master("staging")
	require.NoError(t, err)
	assert.Equal(t, string(good.MarshalIndent()), string(m.MarshalIndent()), "the master survives a restart")
	prod, err := svc.Master("production")
	require.NoError(t, err)
	assert.Equal(t, string(DefaultMaster().MarshalIndent()), string(prod.MarshalIndent()), "environments are separate")

	ptu, err := svc.Answer("staging", MakeSnapshot(PreloadedTable(), SnapshotInfo{Apps: []string{"123456"}}))
	require.NoError(t, err)
	assert.Equal(t, good.Section("app_policies")["123456"], ptu.Section("app_policies")["123456"])
	var n json.Number = "20"
	assert.Equal(t, n, ptu.Section("module_config")["exchange_after_x_days"])
}
