// Package client is the device side: the SOTA client and a software loading manager, used by
// `sota device` and the end-to-end tests.
package client
