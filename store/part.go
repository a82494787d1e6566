package store

// Part is one domain's share of a transaction that another domain opens: the way a change that spans
// two domains stays one transaction while neither domain hands the other its Txn.
//
// The domain that takes part builds the Part from its own unexported code (NewPart), over the
// transaction it will be given; F is the typed operation it offers in that transaction (for example
// func(vin string) error). It hands the *Part to the domain that opens the transaction, usually once
// at wiring (a cascade hook) or per call (a joint operation). That domain calls In with its open
// transaction and runs the returned F. So a Txn appears in no exported signature of a domain package,
// and each domain reads and writes only its own records, through its own code.
type Part[F any] struct{ build func(Txn) F }

// NewPart returns the part whose operation in a transaction t is build(t).
func NewPart[F any](build func(t Txn) F) *Part[F] { return &Part[F]{build: build} }

// In returns the part's operation in the open transaction t.
func (p *Part[F]) In(t Txn) F { return p.build(t) }
