package wire

import (
	"crypto/ed25519"
	"encoding/base64"
)

// Wakeup is the signed shoulder tap the server POSTs to --wakeup-url (and sends over RVI). Signature
// is the base64 (standard encoding) ed25519 signature of WakeupMessage(vin, nonce, issuedAt) under
// the server's key, published at GET /api/v1/wakeup/public_key.
type Wakeup struct {
	VIN       string `json:"vin"`
	Nonce     string `json:"nonce"`
	IssuedAt  string `json:"issuedAt"`
	Signature string `json:"signature"`
}

// WakeupKey is the answer of GET /api/v1/wakeup/public_key: the key that verifies wake-ups.
type WakeupKey struct {
	Algorithm     string `json:"algorithm"`     // "ed25519"
	PublicKey     string `json:"publicKey"`     // base64 (standard encoding)
	SignedMessage string `json:"signedMessage"` // WakeupSignedMessage
}

// WakeupSignedMessage describes WakeupMessage's layout to a reader of WakeupKey.
const WakeupSignedMessage = `sota-wakeup\n<vin>\n<nonce>\n<issuedAt>`

// WakeupMessage is the byte string a wake-up signature covers.
func WakeupMessage(vin, nonce, issuedAt string) []byte {
	return []byte("sota-wakeup\n" + vin + "\n" + nonce + "\n" + issuedAt)
}

// SignWakeup signs a wake-up for vin with the server's key.
func SignWakeup(key ed25519.PrivateKey, vin, nonce, issuedAt string) Wakeup {
	w := Wakeup{VIN: vin, Nonce: nonce, IssuedAt: issuedAt}
	w.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, WakeupMessage(vin, nonce, issuedAt)))
	return w
}

// VerifyWakeup checks a wake-up's signature against the server's public key.
func VerifyWakeup(pub ed25519.PublicKey, w Wakeup) bool {
	sig, err := base64.StdEncoding.DecodeString(w.Signature)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(pub, WakeupMessage(w.VIN, w.Nonce, w.IssuedAt), sig)
}
