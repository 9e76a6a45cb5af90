# The lock's user interface through machine.Pin: LED, buzzer, vibration motor, one button. It is the provisionee's
# `app` (docs/provisioning.md callbacks): attention timer, Output OOB (blink/beep/vibrate counts; numbers and
# strings printed on the console), Input OOB (button pushes counted; numbers/strings from the REPL), and the
# factory reset (button held 10 s). Pins come from the board configuration ("pins"); a missing pin is skipped.
import asyncio
import time

from machine import Pin
from micropython import const

from mesh import log, prov_pdu as P, provisionee

_PULSE_ON_MS = const(250)
_PULSE_OFF_MS = const(350)  # pulses of one count < 1 s apart; a group ends with a longer pause
# Between repetitions of the count (the installer may miss the first), dark this long: §5.4.2.4.3 'a gap of at
# least 3 seconds between sequences to allow the user to determine the end of the sequence'
_GROUP_GAP_MS = const(3000)
_ATTENTION_HALF_MS = const(250)  # attention: 2 Hz blinking (§5.4.1.1 Attention Timer)
# Input OOB push: §5.4.2.4.4 'the value is considered to have been input after no further input actions are
# detected for more than 5 seconds'
_PUSH_DONE_MS = const(5000)
_HOLD_RESET_MS = const(10000)  # button held this long: node reset
_DEBOUNCE_MS = const(30)
_TAG = const("ui")
_OUTPUTS = ((P.OUTPUT_BLINK, "led"), (P.OUTPUT_BEEP, "buzzer"), (P.OUTPUT_VIBRATE, "vibrate"))


class Ui:
    def __init__(self, pins):
        self.node = None  # set by main: the object whose input_number()/reset() we call
        self.wake = None  # radio.wake: apply the node's actions after we fed it
        self.out = {}
        for name in ("led", "buzzer", "vibrate"):
            if pins.get(name) is not None:
                self.out[name] = Pin(pins[name], Pin.OUT, value=self._off(pins, name))
        self._pins = pins
        self._show = None  # the task showing an Output OOB value or the attention timer
        self._want_push = False
        self._count = 0
        self._edges = []
        self._flag = asyncio.ThreadSafeFlag()
        self.button = None
        if pins.get("button") is not None:
            self.button = Pin(pins["button"], Pin.IN, Pin.PULL_UP)  # to ground: pressed = 0
            self.button.irq(self._edge, Pin.IRQ_FALLING | Pin.IRQ_RISING)

    @staticmethod
    def _off(pins, name):
        return 1 if pins.get(name + "_active_low") else 0

    def _set(self, name, on):
        p = self.out.get(name)
        if p is not None:
            p.value((1 if on else 0) ^ self._off(self._pins, name))

    # ---- outputs ----
    def _start(self, coro):
        self._stop()
        self._show = asyncio.create_task(coro)

    def _stop(self):
        if self._show is not None:
            self._show.cancel()
            self._show = None
        for name in self.out:
            self._set(name, False)

    async def _pulses(self, name, count):
        # Repeated while the provisionee's timer can still run (§5.4.4: 120 s with Output OOB); the attempt's end
        # (Confirmation, close, failure) stops it sooner.
        t0 = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), t0) < provisionee.USER_TIMEOUT_MS:
            for _ in range(count):
                self._set(name, True)
                await asyncio.sleep_ms(_PULSE_ON_MS)
                self._set(name, False)
                await asyncio.sleep_ms(_PULSE_OFF_MS)
            await asyncio.sleep_ms(_GROUP_GAP_MS - _PULSE_OFF_MS)

    async def _attention(self, seconds):
        for _ in range(seconds * 1000 // (2 * _ATTENTION_HALF_MS)):
            self._set("led", True)
            await asyncio.sleep_ms(_ATTENTION_HALF_MS)
            self._set("led", False)
            await asyncio.sleep_ms(_ATTENTION_HALF_MS)

    # ---- provisionee callbacks ----
    def attention(self, seconds):  # 0: off (the provisionee's Start, or the attempt ended: §5.4.2.2-3)
        if seconds:
            self._start(self._attention(seconds))
        else:
            self._stop()

    def output_number(self, action, number):
        for bit, name in _OUTPUTS:
            if action == bit:
                log.info(_TAG, "Output OOB: showing a count on the %s", name)
                self._start(self._pulses(name, number))
                return
        self._stop()
        print("OOB output number:", number)  # the console is this lock's display (not the log: AuthValue)

    def output_string(self, string):
        self._stop()
        print("OOB output string:", string)

    def input(self, action, size):
        self._stop()
        if action == P.INPUT_PUSH and self.button is not None:
            self._want_push, self._count = True, 0
            log.info(_TAG, "Input OOB: press the button as many times as the provisioner shows")
        elif action == P.INPUT_ALPHANUMERIC:
            print("OOB input: type node.input_string('...') (up to %d characters)" % size)
        else:
            print("OOB input: type node.input_number(n) (up to %d digits)" % size)

    def _done(self, *args):
        self._stop()

    def _ended(self, *args):
        self._stop()
        self._want_push = False

    # input_complete(): the provisioner has the value, stop showing it; complete(net_key_index, address) and
    # failed(code): the attempt is over; link_close(bearer, reason) and reset(): no Input OOB pushes expected either
    input_complete = complete = failed = _done
    link_close = reset = _ended

    # ---- button ----
    def _edge(self, pin):
        self._edges.append((pin.value(), time.ticks_ms()))
        self._flag.set()

    async def run(self):
        """The button: Input OOB pushes and the 10 s hold for a factory reset."""
        down = last = None
        while True:
            timeout = None
            now = time.ticks_ms()
            if down is not None:
                timeout = _HOLD_RESET_MS - time.ticks_diff(now, down)
                if timeout <= 0:
                    down = None
                    self._count = 0
                    log.info(_TAG, "button held 10 s: factory reset")
                    self._call("reset")
                    continue
            elif self._count and last is not None:
                timeout = _PUSH_DONE_MS - time.ticks_diff(now, last)
                if timeout < 0:  # more than 5 s without a press
                    n, self._count = self._count, 0
                    if self._want_push:
                        self._want_push = False
                        log.info(_TAG, "Input OOB: %d press(es)", n)
                        self._call("input_number", n)
                    continue
            try:
                if timeout is None:
                    await self._flag.wait()
                else:
                    await asyncio.wait_for_ms(self._flag.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            while self._edges:
                level, t = self._edges.pop(0)
                if last is not None and time.ticks_diff(t, last) < _DEBOUNCE_MS:
                    continue
                last = t
                if level == 0 and down is None:
                    down = t
                elif level == 1 and down is not None:
                    down = None
                    self._count += 1

    def _call(self, name, *args):
        try:
            getattr(self.node, name)(*args)
        except ValueError as e:  # e.g. no input expected any more
            log.error(_TAG, "%s: %s", name, e)
        if self.wake is not None:
            self.wake()
