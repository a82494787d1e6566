// Package resolver is the External Resolver domain: vehicles, components, packages, installed sets,
// filters, associations, the dependency graph and solver, resolve / dry run / explain, and the
// in-memory fleet index.
package resolver
