package signing

// Key files: securesystemslib-style JSON, one ed25519 key a file, readable by their owner only.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// KeyFile is one ed25519 key as stored in KEYS/<role>_key.json:
// {"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"<hex>","private":"<hex 32-byte seed>"}}.
type KeyFile struct {
	KeyType string `json:"keytype"`
	Scheme  string `json:"scheme"`
	KeyVal  KeyVal `json:"keyval"`
}

// KeyVal holds the hex-encoded public key and private seed (absent in a public key).
type KeyVal struct {
	Public  string `json:"public"`
	Private string `json:"private,omitempty"`
}

// NewKey makes a fresh ed25519 key.
func NewKey() (KeyFile, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return KeyFile{}, err
	}
	return KeyFile{KeyType: "ed25519", Scheme: "ed25519", KeyVal: KeyVal{Public: hex.EncodeToString(pub), Private: hex.EncodeToString(priv.Seed())}}, nil
}

// ParseKey decodes and checks a key file's contents: an ed25519 key whose private seed, when given,
// yields its public key.
func ParseKey(b []byte) (KeyFile, error) {
	var k KeyFile
	if err := json.Unmarshal(b, &k); err != nil {
		return k, fmt.Errorf("not a key file: %v", err)
	}
	if k.KeyType != "ed25519" || k.Scheme != "ed25519" {
		return k, fmt.Errorf("key type %q scheme %q: only ed25519 keys are supported", k.KeyType, k.Scheme)
	}
	pub, err := hex.DecodeString(k.KeyVal.Public)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return k, errors.New("keyval.public is not a hex ed25519 public key")
	}
	if k.KeyVal.Private != "" {
		seed, err := hex.DecodeString(k.KeyVal.Private)
		if err != nil || len(seed) != ed25519.SeedSize {
			return k, errors.New("keyval.private is not a hex 32-byte ed25519 seed")
		}
		if !ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(pub)) {
			return k, errors.New("keyval.private does not belong to keyval.public")
		}
	}
	return k, nil
}

// ReadKeyFile reads and checks a key file.
func ReadKeyFile(path string) (KeyFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return KeyFile{}, err
	}
	k, err := ParseKey(b)
	if err != nil {
		return k, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile writes k to path readable and writable by its owner only (0600), refusing to
// overwrite an existing file.
func WriteKeyFile(path string, k KeyFile) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// PublicOnly is k without its private seed.
func (k KeyFile) PublicOnly() KeyFile {
	k.KeyVal.Private = ""
	return k
}

// HasPrivate tells whether k carries its private seed.
func (k KeyFile) HasPrivate() bool { return k.KeyVal.Private != "" }

// TUF is k as a key of TUF metadata.
func (k KeyFile) TUF() *metadata.Key {
	return &metadata.Key{Type: metadata.KeyTypeEd25519, Scheme: metadata.KeySchemeEd25519, Value: metadata.KeyVal{PublicKey: k.KeyVal.Public}}
}

// ID is the TUF key id (sha256 of the canonical JSON of the public key).
func (k KeyFile) ID() string {
	id, err := k.TUF().ID()
	if err != nil { // only for keys ParseKey would refuse
		return ""
	}
	return id
}

// Signer signs TUF metadata with k; k must carry its private seed.
func (k KeyFile) Signer() (signature.Signer, error) {
	seed, err := hex.DecodeString(k.KeyVal.Private)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("the key file holds no private key")
	}
	return signature.LoadED25519Signer(ed25519.NewKeyFromSeed(seed))
}
