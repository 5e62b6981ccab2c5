"""Callback mode: responses taken from the reactor, events handed to the
user's callback, and an exception raised in the reactor run during which
it happened."""


class CallbackDispatch:
    """Delivers a consumer's queue to its callback (``consumer.cb``).

    Args:
        consumer: the JournalConsumerBase (its handle and cb, cb_args,
            cb_kwargs)
        queue: the consumer's DeliveryQueue
    """

    def __init__(self, consumer, queue):
        self.consumer = consumer
        self.queue = queue
        #: call the callback with None at the end of the stream
        self.sees_end = True
        #: True once the then-callback takes the request's responses
        #: (an attribute, read per live event)
        self.active = False
        self._rpc = None
        self._pipeline = None
        self._intake = None
        self._resume = None  # 0 s timer re-entering delivery

    def attach(self, rpc, pipeline, intake):
        """A new request: its future, pipeline and intake.  Responses are
        taken from the reactor once a callback is registered."""
        self._rpc = rpc
        self._pipeline = pipeline
        self._intake = intake
        self.active = False

    def set_then(self):
        """Take responses from the reactor, if a callback and a request
        exist."""
        if self._rpc is not None and self.consumer.cb is not None and not self.active:
            self._intake.set_then(self._rpc, self._react, self)
            self.active = True

    def resume_soon(self):
        """Deliver what waits from the reactor's next turn (a 0 s timer),
        so that events taken earlier, or queued behind a raised exception,
        are not stranded waiting for another response."""
        create = getattr(self.consumer.handle, "timer_watcher_create", None)
        if create is None or self._resume is not None:
            return
        self._resume = create(0.0, self._on_resume)
        self._resume.start()

    def _on_resume(self, handle, watcher, revents, args):
        del handle, revents, args
        watcher.stop()
        self._resume = None
        if self.consumer.cb is not None:
            self._react(None)

    def takes_one(self):
        """Whether an event may go straight to the callback
        (:meth:`deliver_one`): nothing waits for delivery before it."""
        return self._resume is None and not self.queue.ready

    def deliver_one(self, event):
        """Call the callback with *event*, from the reactor, as
        :meth:`_react` would: an exception ends the reactor run (False is
        returned, and what follows waits for the next run)."""
        consumer = self.consumer
        try:
            if consumer.cb_args or consumer.cb_kwargs:
                consumer.cb(event, *consumer.cb_args, **consumer.cb_kwargs)
            else:
                consumer.cb(event)
        except Exception as exc:  # pylint: disable=broad-except
            self.resume_soon()
            self._raise_in_reactor(exc)
            return False
        return True

    def _react(self, take):
        """From the reactor: call *take()* (taking arrived responses; None
        for none), then the callback for everything deliverable.

        An exception (the callback's, or an error the stream raises) must
        end the reactor_run() during which it happened, as flux does for
        its own callbacks, but without what flux's wrapper also does to a
        then-callback that raises: stop its future for good, so that the
        rest of the stream would never arrive.  So it is caught here and
        handed to the handle's own mechanism: ``set_exception()``, which
        reactor_run() raises at its end (even if the callback had called
        reactor_stop() first), and ``reactor_stop_error()``.  A handle
        without them gets the exception raised to its caller.
        """
        try:
            if take is not None:
                take()
                if self._pipeline.gathering and not self.queue.ready:
                    return  # ordered history still coming in: nothing to deliver
            self._dispatch()
        except Exception as exc:  # pylint: disable=broad-except
            self._raise_in_reactor(exc)

    def _raise_in_reactor(self, exc):
        """End the reactor run with *exc* (see _react()); raise it to the
        caller on a handle without the means."""
        handle = self.consumer.handle
        set_exception = getattr(type(handle), "set_exception", None)
        stop_error = getattr(handle, "reactor_stop_error", None)
        if set_exception is None or stop_error is None:
            raise exc
        set_exception(exc)
        stop_error()

    def _dispatch(self):
        """Call the callback for everything deliverable.  If it (or a
        queued error) raises, resume soon and let the exception go on."""
        consumer = self.consumer
        queue = self.queue
        ready = queue.ready
        while True:
            try:
                events = queue.events
                for event in events:
                    # read per event: the callback may replace itself
                    if consumer.cb_args or consumer.cb_kwargs:
                        consumer.cb(event, *consumer.cb_args, **consumer.cb_kwargs)
                    else:
                        consumer.cb(event)  # no argument tuple to build
                if queue.events is not events:
                    continue  # a batch callback took the rest and moved on
                if ready:
                    item = queue.take()
                    if item is not None or self.sees_end:
                        consumer.cb(item, *consumer.cb_args, **consumer.cb_kwargs)
                    continue
            except BaseException:
                self.resume_soon()
                raise
            if not self._pipeline.fill():
                return
