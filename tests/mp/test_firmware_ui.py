# firmware/pins.py (the lock's UI) on the unix port with the host `machine` stand-in, no air: Output OOB pulse
# counts on the LED, Input OOB by button pushes, the 10 s hold that resets the node, nothing shown after the end.
# MicroPython only: the firmware uses micropython.const, asyncio.ThreadSafeFlag and time.ticks_ms.
import sys

sys.path.insert(0, "tools/host")
sys.path.insert(0, "firmware")
import asyncio  # noqa: E402
import time  # noqa: E402

import machine  # noqa: E402  (host stand-in)
import pins  # noqa: E402

from mesh import log  # noqa: E402
from mesh import prov_pdu as P  # noqa: E402

INTERPRETERS = ("micropython",)
PINS = {"led": 12, "buzzer": 14, "button": 13}


class Rec:
    """Stands in for an output Pin: records (ms, level)."""

    def __init__(self):
        self.t0 = time.ticks_ms()
        self.levels = []

    def value(self, v):
        self.levels.append((time.ticks_diff(time.ticks_ms(), self.t0), v))

    def pulses(self):
        return sum(1 for t, v in self.levels if v)


class FakeNode:
    def __init__(self):
        self.calls = []

    def input_number(self, n):
        self.calls.append(("input_number", n))

    def reset(self):
        self.calls.append(("reset",))


def _ui(button=13):
    log.sink = lambda line: None
    ui = pins.Ui(dict(PINS, button=button))
    ui.node = FakeNode()
    woken = []
    ui.wake = lambda: woken.append(1)
    return ui, woken


async def _press(button, hold_ms, gap_ms=150):
    machine.drive(button, 0)
    await asyncio.sleep_ms(hold_ms)
    machine.drive(button, 1)
    await asyncio.sleep_ms(gap_ms)


def test_output_oob_count_repeated_until_the_provisioner_confirms():
    async def go():
        ui, _ = _ui()
        led, buzzer = Rec(), Rec()
        ui.out["led"], ui.out["buzzer"] = led, buzzer
        ui.output_number(P.OUTPUT_BLINK, 3)
        await asyncio.sleep_ms(2000)  # 3 x 600 ms, then the pause before the repetition
        assert led.pulses() == 3 and buzzer.pulses() == 0
        await asyncio.sleep_ms(2600)  # the group starts again after 3 s dark (at 4.45 s)
        ons = [t for t, v in led.levels if v]
        dark = ons[3] - max(t for t, v in led.levels if not v and t < ons[3])
        # §5.4.2.4.3: 'a gap of at least 3 seconds between sequences'; pulses of one count < 1 s apart
        assert len(ons) == 4 and 3000 <= dark < 3200 and ons[1] - ons[0] < 1000
        ui.input_complete()
        n = len(led.levels)
        await asyncio.sleep_ms(700)
        assert len(led.levels) == n and led.levels[-1][1] == 0  # stopped, LED off

    asyncio.run(go())


def test_output_oob_shown_as_long_as_the_provisionee_timer_runs():
    # §5.4.4: with Output OOB the provisioning timer is 120 s (mesh.provisionee.USER_TIMEOUT_MS); the count is
    # repeated that long at most (the attempt's end stops it sooner). Shortened here to see the end.
    from mesh import provisionee

    async def go():
        ui, _ = _ui()
        led = Rec()
        ui.out["led"] = led
        ui.output_number(P.OUTPUT_BLINK, 1)
        await asyncio.sleep_ms(3300)  # one pulse, 3 s dark: the timer (1 s here) has run out, no repetition
        assert led.pulses() == 1 and led.levels[-1][1] == 0

    saved = provisionee.USER_TIMEOUT_MS
    assert saved == 120000
    provisionee.USER_TIMEOUT_MS = 1000
    try:
        asyncio.run(go())
    finally:
        provisionee.USER_TIMEOUT_MS = saved


def test_attention_blinks_until_set_to_0():
    # the provisionee calls attention(0) at Start and when the attempt ends before it (§5.4.2.2, §5.4.2.3)
    async def go():
        ui, _ = _ui()
        led = Rec()
        ui.out["led"] = led
        ui.attention(5)
        await asyncio.sleep_ms(1100)
        assert led.pulses() == 3
        ui.attention(0)
        n = len(led.levels)
        await asyncio.sleep_ms(1100)
        assert len(led.levels) == n and led.levels[-1][1] == 0  # stopped, LED off

    asyncio.run(go())


def test_button_push_input_and_ten_second_hold():
    async def pushes(ui, woken, button):
        await _press(button, 80)  # nobody asked: discarded
        await asyncio.sleep_ms(5100)
        assert ui.node.calls == []
        ui.input(P.INPUT_PUSH, 1)
        for _ in range(3):
            await _press(button, 80, gap_ms=300)
        # §5.4.2.4.4: the value is input 'after no further input actions are detected for more than 5 seconds'
        await asyncio.sleep_ms(4500)  # 4.8 s since the last press
        assert ui.node.calls == []
        await asyncio.sleep_ms(400)
        assert ui.node.calls == [("input_number", 3)] and woken

    async def hold(ui, woken, button):
        await _press(button, 1000)  # a long press, but not 10 s: nothing
        assert ui.node.calls == []
        machine.drive(button, 0)
        await asyncio.sleep_ms(10200)
        assert ui.node.calls == [("reset",)] and woken
        machine.drive(button, 1)

    async def go():
        a, b = _ui(13), _ui(15)
        tasks = [asyncio.create_task(a[0].run()), asyncio.create_task(b[0].run())]
        await asyncio.gather(pushes(a[0], a[1], 13), hold(b[0], b[1], 15))
        for t in tasks:
            t.cancel()

    asyncio.run(go())
