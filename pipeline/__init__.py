"""The ground floor: event schema, bus (embedded | Kafka), store (SQLite | Elasticsearch), settings.

Nothing here imports sensors, detection or console.
"""
