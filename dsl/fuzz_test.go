package dsl

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzFilter runs Parse, Check, Format and Compile on any input: none may panic, every error is a
// positioned ErrorList, and a valid filter survives its canonical form (Parse(Format(x)) == x,
// Format idempotent) and gives the same answer from the reference evaluator and the expr program.
// Seeds: every input under testdata/ (error golden inputs) and the valid filters of the table tests;
// testdata/fuzz/FuzzFilter holds what earlier runs found.
//
//	go test ./dsl -run '^$' -fuzz FuzzFilter -fuzztime 6m -parallel 1
func FuzzFilter(f *testing.F) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*", "*.filter"))
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range inputs {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, tc := range formatCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, src string) {
		n, err := Parse(src)
		if err != nil {
			assertErrorList(t, src, err)
		}
		_, cerr := Compile(src, goldenRefs)
		if cerr != nil {
			assertErrorList(t, src, cerr)
		}
		if n == nil {
			if cerr == nil {
				t.Fatalf("Compile accepts what Parse rejects: %q", src)
			}
			return
		}
		if cerr := Check(n, goldenRefs); cerr != nil {
			assertErrorList(t, src, cerr)
		}
		out := Format(n)
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("the canonical form of %q does not parse: %q\n%v", src, out, err)
		}
		if !Equal(n, again) {
			t.Fatalf("Parse(Format(x)) != x for %q: canonical %q", src, out)
		}
		if out2 := Format(again); out2 != out {
			t.Fatalf("Format is not idempotent for %q: %q then %q", src, out, out2)
		}
		p, err := Compile(src, goldenRefs)
		if err != nil {
			return
		}
		for _, v := range meaningFleet {
			if p.Eval(v) != p.Match(v) {
				t.Fatalf("reference evaluator and expr program disagree on %q for %s", src, v.VIN)
			}
		}
	})
}

func assertErrorList(t *testing.T, src string, err error) {
	t.Helper()
	list, ok := err.(ErrorList)
	if !ok || len(list) == 0 || len(list) > MaxErrors {
		t.Fatalf("error for %q is not a list of 1..%d errors: %T %v", src, MaxErrors, err, err)
	}
	for _, e := range list {
		if e.Line < 1 || e.Column < 1 || e.Message == "" || e.Offset < 0 || e.Offset > len(src) {
			t.Fatalf("error for %q has no proper position or message: %+v", src, *e)
		}
		_ = e.Error()
	}
}
