"""Reading a whole journal history on a real broker, for the broker tests."""


def full_history(consumer):
    """Start *consumer* (created with include_sentinel=True), poll() to the
    sentinel, then stop() and poll() to the end; the events before the
    sentinel."""
    consumer.start()
    events = []
    while not (event := consumer.poll(30.0)).is_empty():
        events.append(event)
    consumer.stop()
    while consumer.poll(30.0) is not None:
        pass
    return events
