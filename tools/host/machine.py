# Host stand-in for MicroPython's `machine` on the ESP32: Pin (LED, buzzer, button), Signal, PWM, reset.
# HOST ONLY: never deployed or frozen. Shadows the unix port's built-in `machine` via MICROPYPATH=tools/host:...
#
# With AIR=HOST:PORT set, pins travel over the virtual air link this process shares with `bluetooth`
# (docs/air.md, "Pins"): an output pin's changes are reported to the hub, which tells watching clients
# (air_client.Radio.watch_pins: read the blinks/beeps of output OOB); a test presses a button with
# air_client.Radio.press(lock_addr, pin) and the input pin changes here, firing Pin.irq handlers.
# Without AIR, pins are local; a test drives an input with machine.drive(pin_id, value).
import sys

import _airlink

RESET_EXIT_CODE = 3  # machine.reset() ends the process with this status; a supervisor restarts the lock

_inputs = {}  # pin id -> level driven from outside (button); default: the pull resistor's level
_pins = {}  # pin id -> Pin objects (several objects may share a pin)
_hooked = False


def _link():
    global _hooked
    link = _airlink.get()
    if link is not None and not _hooked:
        link.handlers["pin_in"] = lambda m: drive(m["pin"], m["value"])
        _hooked = True
    return link


def drive(pin_id, value):
    """Set the level the outside world puts on an input pin (a button), firing IRQs on an edge."""
    value = 1 if value else 0
    _inputs[pin_id] = value
    for p in _pins.get(pin_id, ()):
        old, p._level = p._level, value
        if p._irq_handler is not None and old != value:
            edge = Pin.IRQ_RISING if value else Pin.IRQ_FALLING
            if p._irq_trigger & edge:
                p._irq_handler(p)


class _Switch:  # on()/off() in terms of value(), shared by Pin and Signal
    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class Pin(_Switch):
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, alt=None):  # noqa: A002 - the board's
        self._id = id
        self._mode, self._pull = Pin.IN, None
        self._level = 0
        self._irq_handler, self._irq_trigger = None, 0
        _pins.setdefault(id, []).append(self)
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None, drive=None, alt=None):
        if mode != -1:
            self._mode = mode
        if pull != -1:
            self._pull = pull
        if self._mode == Pin.IN:
            self._level = _inputs.get(self._id, 1 if self._pull == Pin.PULL_UP else 0)
        if value is not None:
            self.value(value)
        _link()

    def value(self, v=None):
        if v is None:
            return self._level
        v = 1 if v else 0
        if self._mode != Pin.IN and v != self._level:
            self._level = v
            link = _link()
            if link is not None and not link.closed:
                link.send({"op": "pin", "pin": self._id, "value": v})
        return None

    __call__ = value

    def irq(self, handler=None, trigger=3, *, priority=1, wake=None, hard=False):
        self._irq_handler, self._irq_trigger = handler, trigger
        _link()

    def __repr__(self):
        return "Pin(%r)" % (self._id,)


class Signal(_Switch):
    def __init__(self, pin, *, invert=False):
        self._pin, self._invert = pin, bool(invert)

    def value(self, v=None):
        if v is None:
            return self._pin.value() ^ self._invert
        self._pin.value((1 if v else 0) ^ self._invert)
        return None

    __call__ = value


class PWM:
    """A buzzer or dimmed LED: reported as the pin's level, 1 while the duty is non-zero."""

    def __init__(self, dest, freq=0, duty_u16=0, duty_ns=0, invert=False):
        self._pin, self._freq, self._duty = dest, freq, 0
        if self._pin._mode == Pin.IN:
            self._pin.init(Pin.OUT)
        self.duty_u16(duty_u16 or (1 if duty_ns else 0))

    def init(self, *, freq=None, duty_u16=None, duty_ns=None, invert=False):
        if freq is not None:
            self._freq = freq
        if duty_u16 is not None or duty_ns is not None:
            self.duty_u16(duty_u16 or (1 if duty_ns else 0))

    def duty_ns(self, ns=None):
        if ns is None:
            return self._duty * 1000000000 // (65535 * self._freq) if self._freq else 0
        self.duty_u16(min(65535, ns * self._freq * 65535 // 1000000000) or (1 if ns else 0))
        return None

    def freq(self, f=None):
        if f is None:
            return self._freq
        self._freq = f
        return None

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        self._duty = d
        self._pin.value(1 if d and self._freq else 0)
        return None

    def deinit(self):
        self.duty_u16(0)


class WDT:
    """Accepted and fed; the host never bites (a hung simulated lock shows up as a test timeout instead)."""

    def __init__(self, *, id=0, timeout=5000):  # noqa: A002 - the board's signature
        self.timeout = timeout

    def feed(self):
        pass


PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


def reset_cause():
    return PWRON_RESET  # every host start is a power-on


def unique_id():
    link = _link()
    return link.addr if link is not None else b"\x00" * 6


def freq(*args):
    return 240000000


def idle():
    pass


def reset():
    sys.exit(RESET_EXIT_CODE)


soft_reset = reset
