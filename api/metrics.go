package api

// Prometheus metrics (GET /metrics, or --metrics-listen): requests by route and status with latency
// histograms, device and DDI polls, chunks and bytes served, resolve and dry-run latency from the
// request path; updates by status, campaigns by status, the group progress of running and paused
// campaigns and the store's size read at scrape time; the Go runtime and the process. Each Server has its own registry.

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sota/engine"
)

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	polls    *prometheus.CounterVec
	chunks   prometheus.Counter
	bytes    prometheus.Counter
	resolve  *prometheus.HistogramVec
	webhooks *prometheus.CounterVec
}

// routeMetrics are a route's series, looked up once so that a request pays no label hashing.
type routeMetrics struct {
	m        *metrics
	method   string
	path     string
	duration prometheus.Observer
	byStatus sync.Map // int -> prometheus.Counter
	poll     prometheus.Counter
	resolve  prometheus.Observer
	served   bool // chunk or download: counts chunks and bytes
	chunk    bool
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sota_http_requests_total",
		Help: "HTTP requests by route pattern, method and status."}, []string{"route", "method", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sota_http_request_duration_seconds",
		Help: "HTTP request latency by route pattern and method.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}},
		[]string{"route", "method"})
	m.polls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sota_device_polls_total",
		Help: "Device polls by protocol (sota: GET /api/v1/vehicle_updates/:vin, ddi: the hawkBit DDI base poll)."}, []string{"protocol"})
	m.chunks = prometheus.NewCounter(prometheus.CounterOpts{Name: "sota_chunks_served_total", Help: "Transfer chunks served to devices."})
	m.bytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "sota_bytes_served_total", Help: "Payload bytes served to devices (chunks and downloads)."})
	m.resolve = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sota_resolve_duration_seconds",
		Help: "Latency of resolve and dry-run calls.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"kind"})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sota_webhook_deliveries_total",
		Help: "Webhook delivery attempts by result (delivered, retry, gave_up)."}, []string{"result"})
	if s.deps.Engine != nil {
		s.deps.Engine.ObserveWebhooks(func(result string) { m.webhooks.WithLabelValues(result).Inc() })
	}
	m.reg.MustRegister(m.requests, m.duration, m.polls, m.chunks, m.bytes, m.resolve, m.webhooks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{s: s})
	return m
}

func (m *metrics) forRoute(rt *Route) *routeMetrics {
	rm := &routeMetrics{m: m, method: rt.Method, path: rt.Path, duration: m.duration.WithLabelValues(rt.Path, rt.Method)}
	switch rt.Path {
	case "/api/v1/vehicle_updates/:vin":
		rm.poll = m.polls.WithLabelValues("sota")
	case "/:tenant/controller/v1/:vin":
		rm.poll = m.polls.WithLabelValues("ddi")
	case "/api/v1/resolve/:name/:version":
		rm.resolve = m.resolve.WithLabelValues("resolve")
	case "/api/v1/resolve/dry-run":
		rm.resolve = m.resolve.WithLabelValues("dry_run")
	case "/api/v1/vehicle_updates/:vin/:updateId/chunk", "/api/v1/vehicle_updates/:vin/:updateId/chunks/:index":
		rm.served, rm.chunk = true, true
	case "/api/v1/vehicle_updates/:vin/:updateId/download", "/:tenant/controller/v1/:vin/softwaremodules/:moduleId/artifacts/:filename":
		rm.served = true
	}
	return rm
}

func (rm *routeMetrics) counter(status int) prometheus.Counter {
	if c, ok := rm.byStatus.Load(status); ok {
		return c.(prometheus.Counter)
	}
	c := rm.m.requests.WithLabelValues(rm.path, rm.method, strconv.Itoa(status))
	rm.byStatus.Store(status, c)
	return c
}

// measure records every request: by its route's series, or as "unmatched".
func (s *Server) measure() gin.HandlerFunc {
	unmatched := &routeMetrics{m: s.metrics, method: "", path: "unmatched", duration: s.metrics.duration.WithLabelValues("unmatched", "")}
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		rm := unmatched
		if rt := s.route(c); rt != nil && rt.metrics != nil {
			rm = rt.metrics
		}
		d := time.Since(start).Seconds()
		st := c.Writer.Status()
		rm.duration.Observe(d)
		rm.counter(st).Inc()
		if st/100 != 2 {
			return
		}
		if rm.poll != nil {
			rm.poll.Inc()
		}
		if rm.resolve != nil {
			rm.resolve.Observe(d)
		}
		if rm.served {
			if rm.chunk {
				rm.m.chunks.Inc()
			}
			if n := c.Writer.Size(); n > 0 {
				rm.m.bytes.Add(float64(n))
			}
		}
	}
}

// MetricsHandler serves the metrics in the Prometheus text format (for --metrics-listen).
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}

func (s *Server) serveMetrics(c *gin.Context) { s.MetricsHandler().ServeHTTP(c.Writer, c.Request) }

// stateCollector reads what the server holds at scrape time: updates by status, campaigns by status,
// the store's size. The counts over every update cost a pass over the status index, so they are
// kept for stateTTL.
type stateCollector struct {
	s *Server

	mu      sync.Mutex
	at      time.Time
	metrics []prometheus.Metric
}

const stateTTL = 15 * time.Second

var (
	descUpdates   = prometheus.NewDesc("sota_updates", "Updates of every update request by status.", []string{"status"}, nil)
	descCampaigns = prometheus.NewDesc("sota_campaigns", "Campaigns by status.", []string{"status"}, nil)
	descGroups    = prometheus.NewDesc("sota_campaign_group_vehicles", "Vehicles of each group of the running and paused campaigns by update status (pending, inFlight, finished, failed, canceled); a group not released yet has none.", []string{"campaign", "group", "status"}, nil)
	descStore     = prometheus.NewDesc("sota_store_size_bytes", "Bytes the store's files take on disk.", nil, nil)
	descAudit     = prometheus.NewDesc("sota_audit_entries_separate_total", "Audit entries written after their change rather than in its transaction (bulk imports).", nil, nil)
)

func (sc *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descUpdates
	ch <- descCampaigns
	ch <- descGroups
	ch <- descStore
	ch <- descAudit
}

func (sc *stateCollector) Collect(ch chan<- prometheus.Metric) {
	sc.mu.Lock()
	if time.Since(sc.at) > stateTTL {
		sc.metrics, sc.at = sc.read(), time.Now()
	}
	ms := sc.metrics
	sc.mu.Unlock()
	for _, m := range ms {
		ch <- m
	}
	ch <- prometheus.MustNewConstMetric(descAudit, prometheus.CounterValue, float64(sc.s.audit.separate.Load()))
}

func (sc *stateCollector) read() []prometheus.Metric {
	var out []prometheus.Metric
	s := sc.s
	if e := s.deps.Engine; e != nil {
		if c, err := e.UpdateCounts(); err == nil {
			for st, n := range map[string]int{"pending": c.Pending, "inFlight": c.InFlight, "finished": c.Finished, "failed": c.Failed, "canceled": c.Canceled} {
				out = append(out, prometheus.MustNewConstMetric(descUpdates, prometheus.GaugeValue, float64(n), st))
			}
		} else {
			s.log.Warn("metrics: update counts", "err", err)
		}
		if cs, err := e.Campaigns(); err == nil {
			by := map[string]int{}
			for _, c := range cs {
				by[c.Status]++
				// group progress of the campaigns under way only: the series stay bounded by the
				// running and paused campaigns (at most MaxGroups groups each), not by history
				if c.Status != engine.CampaignRunning && c.Status != engine.CampaignPaused {
					continue
				}
				for _, g := range c.Groups {
					var n engine.Counts
					if g.Counts != nil {
						n = *g.Counts
					}
					for st, v := range map[string]int{"pending": n.Pending, "inFlight": n.InFlight, "finished": n.Finished, "failed": n.Failed, "canceled": n.Canceled} {
						out = append(out, prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, float64(v), c.ID, g.Name, st))
					}
				}
			}
			for st, n := range by {
				out = append(out, prometheus.MustNewConstMetric(descCampaigns, prometheus.GaugeValue, float64(n), st))
			}
		}
	}
	if s.deps.StoreSize != nil {
		out = append(out, prometheus.MustNewConstMetric(descStore, prometheus.GaugeValue, float64(s.deps.StoreSize())))
	}
	return out
}
