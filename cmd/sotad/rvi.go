package main

import (
	"net"
	"strconv"
	"strings"
)

// selfURL is this server's base URL as an RVI node on this machine reaches it: the listen address,
// with a wildcard host read as localhost.
func selfURL(cfg Config, ln net.Listener) string {
	scheme := "http"
	if cfg.TLSCert != "" || cfg.TLS != "" {
		scheme = "https"
	}
	host, port := "localhost", ""
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
		if !a.IP.IsUnspecified() {
			host = a.IP.String()
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// rviSelfURL is the base URL this server registers with the RVI node for its services:
// --rvi-advertise-url (with several replicas, the load balancer's, so that the vehicles' messages
// reach whichever replica is alive), else selfURL.
func rviSelfURL(cfg Config, ln net.Listener) string {
	if cfg.RVIAdvertiseURL != "" {
		return strings.TrimRight(cfg.RVIAdvertiseURL, "/")
	}
	return selfURL(cfg, ln)
}

// wakeupURL is where the engine posts wake-ups: --wakeup-url, or with the RVI transport and no
// --wakeup-url the transport's own receiver, which turns them into RVI notifications.
func wakeupURL(cfg Config, ln net.Listener) string {
	if cfg.WakeupURL == "" && cfg.RVIURL != "" {
		return selfURL(cfg, ln) + "/rvi/wakeup"
	}
	return cfg.WakeupURL
}
