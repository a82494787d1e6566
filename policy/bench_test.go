package policy

import "testing"

// BenchmarkValidatePreloaded measures one validation of SDL Core's 218 kB preloaded table and
// reports it against decoding the same bytes (the baseline any validator pays).
func BenchmarkValidatePreloaded(b *testing.B) {
	data := readTestdata(b, preloadedFile)
	var parseNs float64
	b.Run("parse", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := Parse(data); err != nil {
				b.Fatal(err)
			}
		}
		parseNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("validate", func(b *testing.B) {
		tb, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if r := Validate(Preloaded, tb); !r.Valid {
				b.Fatal(r.Errors)
			}
		}
		if parseNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/parseNs, "x-parse")
		}
	})
}
