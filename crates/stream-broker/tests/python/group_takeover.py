"""kafka-python against keel-stream-broker: a producer with acks=all, then a consumer
group of two that splits the partitions and commits; one consumer leaves and the other
takes over from the committed offsets without losing or skipping a record.

Usage: group_takeover.py HOST:PORT. Prints one JSON line with the counts; exits non-zero
on any failed check. Every wait is bounded.
"""
import json
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import CommitFailedError

BOOT = sys.argv[1]
TOPIC = "events"
N = 4000
PARTITIONS = 4
DEADLINE = time.time() + 120


def check(cond, what):
    if not cond:
        print(json.dumps({"failed": what}))
        sys.exit(1)


admin = KafkaAdminClient(bootstrap_servers=BOOT, request_timeout_ms=10000)
admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)])
admin.close()

producer = KafkaProducer(bootstrap_servers=BOOT, acks="all", linger_ms=5, retries=5)
futures = [producer.send(TOPIC, key=("k%d" % (i % 50)).encode(), value=str(i).encode()) for i in range(N)]
producer.flush(timeout=60)
acked = sum(1 for f in futures if f.succeeded())
producer.close()
check(acked == N, "producer acks=all: %d of %d acknowledged" % (acked, N))


def consumer(name):
    return KafkaConsumer(
        TOPIC,
        bootstrap_servers=BOOT,
        group_id="takeover",
        client_id=name,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        max_poll_records=20,
        consumer_timeout_ms=1000,
    )


seen = {}  # (partition, offset) -> consumer name
by = {"a": 0, "b": 0}
refused = [0]


def poll(c, name):
    got = 0
    for recs in c.poll(timeout_ms=200).values():
        for r in recs:
            seen.setdefault((r.partition, r.offset), name)
            by[name] += 1
            got += 1
    if got:
        try:
            c.commit()  # commit after processing: at-least-once
        except CommitFailedError:
            # The group is mid-rebalance: these records may be delivered again to whoever
            # owns the partition next (counted as redelivered), never lost.
            refused[0] += 1
    return got


a, b = consumer("a"), consumer("b")
# Phase 1: both members consume until each owns partitions and half the records are in.
split = None
while time.time() < DEADLINE:
    poll(a, "a")
    poll(b, "b")
    pa, pb = a.assignment(), b.assignment()
    if pa and pb and len(pa) + len(pb) == PARTITIONS and not (pa & pb):
        split = (sorted(p.partition for p in pa), sorted(p.partition for p in pb))
        if len(seen) >= N // 4:
            break
check(split is not None, "the two consumers never split the partitions")
check(len(split[0]) == 2 and len(split[1]) == 2, "uneven split %r" % (split,))
before = len(seen)
check(before < N, "a left with records still to consume in its partitions")
a.close()  # leaves the group (LeaveGroup); its commits are already stored
# Phase 2: b takes over every partition and reads to the end.
while time.time() < DEADLINE and (len(seen) < N or len(b.assignment()) < PARTITIONS):
    poll(b, "b")
check(len(b.assignment()) == PARTITIONS, "b did not take over all partitions")
b.close()
check(len(seen) == N, "consumed %d distinct records of %d" % (len(seen), N))
ends = {}
for (p, o) in seen:
    ends[p] = max(ends.get(p, -1), o)
for p, end in ends.items():
    missing = [o for o in range(end + 1) if (p, o) not in seen]
    check(not missing, "partition %d skipped offsets %r" % (p, missing[:5]))
print(json.dumps({
    "produced_acks_all": acked,
    "consumed_distinct": len(seen),
    "by_a": by["a"],
    "by_b": by["b"],
    "split": split,
    "seen_before_leave": before,
    "redelivered": by["a"] + by["b"] - len(seen),
    "commits_refused_mid_rebalance": refused[0],
}))
