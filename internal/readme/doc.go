// Package readme holds the tests that keep README.md and docs/ true: the walkthrough blocks of the
// README run, in order, against the server `make run` starts, and every relative link of the
// documentation points at a file of the repository.
package readme
