// Package stream runs `ruledex hunt --kafka`: a worker of a Kafka consumer group that
// reads JSON events from a topic, matches them with the hunt package's matcher, and
// produces alerts (the `hunt --json` record plus where the event was read and a
// deterministic alert_id) to an alerts topic. Delivery is at least once: a poll's
// offsets are committed only after its alerts are acknowledged by the brokers, so a
// worker killed at any point loses nothing and its successor may emit duplicates,
// which carry the same alert_id. Correlation rules keyed across workers plug in
// through Correlations.
package stream
