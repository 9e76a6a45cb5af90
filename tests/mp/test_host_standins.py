# The host stand-ins' local behaviour (no air needed): bluetooth.UUID, BLE() before the air, machine.Pin/Signal/PWM.
# Over the air they are tested by tests/test_air.py.
import sys

sys.path.insert(0, "tools/host")

import bluetooth  # noqa: E402
import machine  # noqa: E402
from mpunit import raises  # noqa: E402

_EPERM = 1
_ENODEV = 19


def test_uuid_forms_and_equality():
    assert bluetooth.UUID(0x1827) == bluetooth.UUID(b"\x27\x18")
    assert bluetooth.UUID(0x1827) != bluetooth.UUID(0x1828)
    assert bluetooth.UUID(0x1827).wire() == "1827"
    text = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
    u = bluetooth.UUID(text.upper())
    assert u.wire() == text and u == bluetooth.UUID(u)
    for bad in (b"\x01\x02\x03", "1234", -1):
        raises(ValueError, bluetooth.UUID, bad)


def test_ble_is_a_singleton_that_needs_the_air():
    ble = bluetooth.BLE()
    assert ble is bluetooth.BLE() and ble.active() is False
    e = raises(OSError, ble.gap_advertise, 100000, b"")
    assert e.args[0] == _EPERM
    e = raises(OSError, ble.active, True)  # AIR is not set in the test environment
    assert e.args[0] == _ENODEV and ble.active() is False


def test_input_pin_reads_pull_level_until_driven_and_fires_irq_on_its_edges():
    btn = machine.Pin(100, machine.Pin.IN, machine.Pin.PULL_UP)
    seen = []
    btn.irq(lambda p: seen.append(p.value()), machine.Pin.IRQ_FALLING)
    assert btn.value() == 1
    machine.drive(100, 0)
    machine.drive(100, 0)  # no edge
    machine.drive(100, 1)  # rising: not asked for
    assert seen == [0] and btn() == 1
    late = machine.Pin(100, machine.Pin.IN)
    machine.drive(100, 0)
    assert late.value() == 0 and machine.Pin(101, machine.Pin.IN).value() == 0


def test_outputs_signal_and_pwm():
    led = machine.Pin(102, machine.Pin.OUT, value=1)
    assert led.value() == 1
    led.off()
    assert led() == 0
    inv = machine.Signal(led, invert=True)
    inv.on()
    assert led.value() == 0 and inv.value() == 1
    inv.off()
    assert led.value() == 1
    pin = machine.Pin(103)
    buzzer = machine.PWM(pin, freq=2000, duty_u16=32768)
    assert buzzer.duty_u16() == 32768 and pin.value() == 1  # sounding
    buzzer.deinit()
    assert buzzer.duty_u16() == 0 and pin.value() == 0


def test_reset_ends_the_process_with_a_known_status():
    e = raises(SystemExit, machine.reset)
    assert e.args[0] == machine.RESET_EXIT_CODE
