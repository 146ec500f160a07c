"""What the broker holds for us and how it is brought back: batch ids in flight, a Redis
restart noticed, unacknowledged deliveries handed back at start-up (docs/reliability.md).

Apart from ``orchestrator/broker`` (running Redis, guarding kombu), because this part
speaks in the coordinator's terms (queues, live state) and the broker part must not.
"""
