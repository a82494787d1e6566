package resolver

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"

	"sota/errs"
	"sota/store"
)

// ListComponents returns the page of components whose part number matches regex ("" = all), sorted by
// part number (case-insensitively), and how many match in all.
func (s *Service) ListComponents(regex string, p Page) ([]Component, int, error) {
	var re *regexp.Regexp
	if regex != "" {
		r, err := validRegex("regex", regex)
		if err != nil {
			return nil, 0, err
		}
		re = r
	}
	var all []Component
	err := s.db.View(func(t store.Txn) error {
		return iterateJSON(t, []byte(pComponent), func(c *Component) error {
			if re == nil || re.MatchString(c.PartNumber) {
				all = append(all, *c)
			}
			return nil
		})
	})
	if err != nil {
		return nil, 0, err
	}
	return append([]Component{}, pageOf(all, p)...), len(all), nil
}

// PutComponent creates the component or updates its description (upsert).
func (s *Service) PutComponent(part, description string) (Component, error) {
	return s.saveComponent(part, description, false)
}

// CreateComponent creates the component; an existing one is a duplicate_entry conflict.
func (s *Service) CreateComponent(part, description string) (Component, error) {
	return s.saveComponent(part, description, true)
}

func (s *Service) saveComponent(part, description string, create bool) (Component, error) {
	if err := ValidPartNumber(part); err != nil {
		return Component{}, err
	}
	if len(description) > maxDescription {
		return Component{}, errs.InvalidEntity("description is at most %d bytes", maxDescription)
	}
	var c Component
	err := s.write(func(t store.Txn) error {
		found, err := getJSON(t, componentKey(part), &c)
		if err != nil {
			return err
		}
		if found && create {
			return duplicate("Component already exists: %s", c.PartNumber)
		}
		if !found {
			c.PartNumber = part
		}
		c.Description = description
		return putJSON(t, componentKey(part), c)
	})
	return c, err
}

// DeleteComponent removes a component that no vehicle has installed.
func (s *Service) DeleteComponent(part string) error {
	if err := ValidPartNumber(part); err != nil {
		return err
	}
	// the index lists the vehicles that have the component: with the change feed applied it has every
	// install any replica acknowledged before this call (feed.go)
	if err := s.db.CatchUp(context.Background()); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		c, err := s.loadComponent(t, part)
		if err != nil {
			return err
		}
		// each listed vehicle is read in this transaction: another replica may have removed the
		// component since the index learned of it
		vins := s.vinsWithComponent(part)
		for _, vin := range vins {
			v, err := getVehicle(t, vin)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if slices.ContainsFunc(v.Components, func(p string) bool { return strings.EqualFold(p, part) }) {
				return errs.New(errs.Conflict, "component_is_installed", "Component %s is installed on %d vehicle(s), e.g. %s", c.PartNumber, len(vins), vin)
			}
		}
		return t.Delete(componentKey(part))
	})
}

// ComponentVehicles returns the page of VINs that have the component installed, sorted, and their number.
func (s *Service) ComponentVehicles(part string, p Page) ([]string, int, error) {
	if err := ValidPartNumber(part); err != nil {
		return nil, 0, err
	}
	var vins []string
	err := s.db.View(func(t store.Txn) error {
		if _, err := s.loadComponent(t, part); err != nil {
			return err
		}
		vins = s.vinsWithComponent(part)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return append([]string{}, pageOf(vins, p)...), len(vins), nil
}

// loadComponent reads a component; a missing one is missing_component.
func (s *Service) loadComponent(t store.Txn, part string) (Component, error) {
	var c Component
	found, err := getJSON(t, componentKey(part), &c)
	if err == nil && !found {
		err = missingComponent(part)
	}
	return c, err
}
