// Package dsl is the filter language: lexer and parser (participle), AST, checker, printer,
// reference evaluator, compiler to expr programs, and the index plan. It imports nothing of ours.
//
// Parse turns source into a tree of our own Node types (participle's grammar structs never leave the
// package); Format prints a tree in canonical form; errors are an ErrorList of positioned Errors
// that print the source line with a caret, as DSL.md shows.
package dsl
