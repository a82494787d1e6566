package main

import (
	"context"
	"log/slog"
	"time"

	"sota/examples/load"
	"sota/resolver"
)

// loadExamples loads the example catalogue, fleet and filters (package examples) when --examples is
// set and the store is empty; a store with data is left as it is.
func loadExamples(on bool, rs *resolver.Service, log *slog.Logger) error {
	if !on {
		return nil
	}
	empty, err := load.Empty(rs)
	if err != nil {
		return err
	}
	if !empty {
		log.Info("--examples: the store already holds data; the examples are not loaded")
		return nil
	}
	start := time.Now()
	s, err := load.All(context.Background(), rs, load.DefaultSeed, load.DefaultVehicles)
	if err != nil {
		return err
	}
	log.Info("loaded the example fleet", "vehicles", s.Fleet.Vehicles, "packages", s.Packages, "components", s.Components,
		"filters", s.Filters, "associations", s.Associations, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}
