package engine

import (
	"sort"

	"sota/resolver"
	"sota/store"
)

// Signing vouches for binaries when signed update metadata is on (package signing implements it).
type Signing interface {
	// VerifyInstall refuses (409 unsigned_target) packages whose binaries are not in the signed image
	// targets with identical length and hashes; queuing and launching call it before writing.
	VerifyInstall(ids []resolver.PackageID) error
	// CheckReplace refuses (409 signed_target) an upload that would replace a signed binary.
	CheckReplace(id resolver.PackageID) error
}

// SetSigning turns the signed-metadata checks on (before the server serves requests).
func (s *Service) SetSigning(sg Signing) {
	s.mu.Lock()
	s.signing = sg
	s.mu.Unlock()
}

func (s *Service) signingHook() Signing {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.signing
}

// installed is every package the targets install, each once, sorted.
func installed(targets []resolver.Target) []resolver.PackageID {
	seen := map[resolver.PackageID]bool{}
	var ids []resolver.PackageID
	for _, t := range targets {
		for _, p := range t.Install {
			if !seen[p] {
				seen[p] = true
				ids = append(ids, p)
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return ids
}

// Binaries returns the binary records of the packages in one read; ok[i] is false for a package
// without an uploaded binary.
func (s *Service) Binaries(ids []resolver.PackageID) (bins []Binary, ok []bool, err error) {
	bins, ok = make([]Binary, len(ids)), make([]bool, len(ids))
	err = s.db.View(func(t store.Txn) error {
		for i, id := range ids {
			if bins[i], ok[i], err = s.binary(t, id); err != nil {
				return err
			}
		}
		return nil
	})
	return bins, ok, err
}
