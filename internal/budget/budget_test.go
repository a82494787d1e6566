package budget

import "testing"

func TestPassAndLine(t *testing.T) {
	under := Line{Name: "validate 200 chars", Figure: 12.5, Unit: "µs", Budget: 50}
	if !under.Pass() {
		t.Fatalf("12.5 µs under a 50 µs budget must pass")
	}
	over := Line{Name: "poll", Figure: 9000, Unit: "req/s", Budget: 10000, AtLeast: true, Ratio: 0}
	if over.Pass() {
		t.Fatalf("9000 req/s against at least 10000 must fail")
	}
	want := `budget: name="poll" figure=9000 unit=req/s budget=10000 atleast=true ratio=0 baseline="" pass=false`
	if got := over.String(); got != want {
		t.Fatalf("line\n got %s\nwant %s", got, want)
	}
}

func TestStatusKB(t *testing.T) {
	kb, err := StatusKB("VmHWM")
	if err != nil || kb <= 0 {
		t.Fatalf("VmHWM = %d kB, %v", kb, err)
	}
	if _, err := StatusKB("NoSuchLine"); err == nil {
		t.Fatal("a missing line was read")
	}
}
