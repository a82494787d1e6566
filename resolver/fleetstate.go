package resolver

import "sota/dsl"

// stateTerms are the package names the fleet state knows besides the installed ones in have.
func (x *FleetIndex) stateTerms(kind dsl.TermKind, have []term) []term { return nil }
