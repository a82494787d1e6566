// Package dsl is the filter language: lexer and parser (participle), AST, checker, printer,
// reference evaluator, compiler to expr programs, and the index plan. It imports nothing of ours.
package dsl
