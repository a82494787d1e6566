package examples_test

import (
	"fmt"
	"os"

	"sota/examples"
)

// The same seed gives the same fleet; each line is one vehicle in the fleet import format.
func ExampleWriteJSONL() {
	v := examples.Fleet(1, 1)[0]
	fmt.Println(v.VIN, v.Attributes["model"], v.Attributes["year"], v.Attributes["market"], len(v.Packages), len(v.Components))
	_ = examples.WriteJSONL(os.Stdout, 1, 0) // zero vehicles: nothing written
	// Output: JTDKARFU9TJ537016 Prius 2026 AU 20 5
}

// Position 9 of a VIN is its check digit.
func ExampleCheckDigit() {
	fmt.Println(string(examples.CheckDigit("1M8GDM9AXKP042788")))
	// Output: X
}
