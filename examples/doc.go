// Package examples holds the example fleet generator, example filters and the walkthrough the tests run.
package examples
