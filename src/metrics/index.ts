// Prometheus metrics: CRI-O's collectors (crio.ts), the pull hooks (image-pull.ts), the process
// metrics (process.ts) and the endpoint serving them (server.ts), over a small client
// (registry.ts) and the text format (exposition.ts).
export { collectorName, crioMetrics, CrioMetrics, exposedName, LAYER_SIZE_BUCKETS, METRICS_SUBSYSTEM, sizeBucket } from "./crio.ts";
export { countPulledBytes, imagePullFailureLabel, observePull, recordLayerReused, type PulledArtifact } from "./image-pull.ts";
export { CONTENT_TYPE, renderText, type MetricFamily, type Sample } from "./exposition.ts";
export { countDefunctProcesses, ProcessCollector, readProcessSnapshot } from "./process.ts";
export { Counter, Gauge, GaugeFunc, Histogram, Registry, Summary, type Collector, type Labels } from "./registry.ts";
export { metricsHandler, startMetricsServer, type MetricsServer, type MetricsServerOptions } from "./server.ts";
