// Package web holds the admin UI assets, embedded into the binary.
package web
