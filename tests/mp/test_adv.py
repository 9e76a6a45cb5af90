# Advertising scheduler: jitter, duty cycle, time-sharing, PB-ADV bursts and priorities, link rules, backoff.
from adv_helpers import Rand, kind, run
from mpunit import h, raises

from mesh import adv, beacon
from mesh.rolling_uuid import RollingUuid, derive

UUID = h("70cf7c9732a345b691494810d2e9cbf4")
URI = "https://www.example.com/meshuri"
FIXED = {"interval_min_ms": 100, "interval_max_ms": 100, "window_jitter_ms": 0}


def sched(cfg=None, seed=1, uri=None, uuid=UUID):
    return adv.Scheduler(uuid, 0x4020, uri, cfg, Rand(seed))


def beacons(evts):
    return [t for t, a in evts if kind(a) == "beacon"]


def test_config_defaults_and_checks():
    c = adv.make_config()
    assert (c["interval_min_ms"], c["interval_max_ms"], c["on_ms"], c["period_ms"]) == (100, 110, 1000, 10000)
    assert (c["stall_ms"], c["backoff_max_ms"], c["response_jitter_ms"]) == (500, 1600, 50)
    assert adv.make_config({"on_ms": 2000, "window_jitter_ms": 8000})["on_ms"] == 2000
    for bad in ({"bogus": 1}, {"interval_min_ms": 19}, {"interval_min_ms": 120}, {"pb_adv_spacing_ms": 10},
                {"on_ms": 0}, {"on_ms": 11000}, {"window_jitter_ms": 9001}, {"pb_adv_count": 0},
                {"gatt_slow_ms": 5}, {"stall_ms": -1}, {"backoff_max_ms": 50}):
        raises(ValueError, adv.make_config, bad)
    raises(ValueError, adv.Scheduler, UUID[:8], 0)  # payloads are built (and checked) at once
    raises(ValueError, adv.Scheduler, UUID, 0, "https://" + "x" * 40)


def test_deterministic_given_rand():
    def trace(seed):
        s = sched(seed=seed, uri=URI)
        s.enable(0)
        return [(t, a.data, a.interval_ms, a.connectable, a.until_ms) for t, a in run(s, 0, 60_000)]

    assert trace(5) == trace(5)
    assert trace(5) != trace(6)


def test_fixed_interval_and_duty_cycle():
    s = sched(dict(FIXED, gatt=False))
    s.enable(0)
    evts = run(s, 0, 50_000)
    assert all(kind(a) == "beacon" and not a.connectable for _, a in evts)
    # one Advert per window (the controller repeats it every 100 ms + its 0-10 ms advDelay), window at slot start
    assert [(t, a.interval_ms, a.until_ms) for t, a in evts] == [(k * 10_000, 100, k * 10_000 + 1000)
                                                                 for k in range(5)]
    assert all(a.data == beacon.unprovisioned_beacon(UUID, 0x4020) for _, a in evts)


def test_interval_jitter_and_window_placement():
    s = sched(dict(gatt=False), seed=3)
    s.enable(0)
    evts = run(s, 0, 200_000)
    ts = beacons(evts)
    gaps = [b - a for a, b in zip(ts, ts[1:]) if b - a < 1000]
    assert min(gaps) >= 100 and max(gaps) <= 110
    assert len(set(gaps)) >= 8  # drawn afresh every event
    # windows: one run of beacons per 10 s slot, <= 1 s long, starting at different offsets in their slots
    starts = [ts[0]] + [b for a, b in zip(ts, ts[1:]) if b - a >= 1000]
    assert len(starts) == 20
    offsets = [t % 10_000 for t in starts[1:]]
    assert len(set(offsets)) > 15 and max(offsets) <= 9000
    for a, b in zip(starts, starts[1:]):
        assert b // 10_000 == a // 10_000 + 1


def test_gatt_gets_the_time_outside_windows_fast_then_slow():
    s = sched(FIXED, uri=URI)
    s.enable(0)
    evts = run(s, 0, 120_000)
    gatt = [(t, a) for t, a in evts if kind(a) == "gatt"]
    assert gatt and all(a.connectable and a.data == beacon.pb_gatt_adv(UUID, 0x4020) for _, a in gatt)
    assert all(a.resp == beacon.uri_advert(URI) for _, a in gatt)  # the URI rides in the scan response
    assert all(a.interval_ms == 500 for t, a in gatt if t < 60_000)
    assert all(a.interval_ms == 2000 for t, a in gatt if t >= 60_000)
    for t, a in gatt:  # never overlaps a beacon window
        assert t % 10_000 >= 1000 and a.until_ms <= (t // 10_000 + 1) * 10_000
        assert a.until_ms <= 60_000 or t >= 60_000  # switches from fast to slow on time


def test_uri_advert_follows_first_beacon_of_window():
    s = sched(dict(gatt=False, window_jitter_ms=0), uri=URI)
    s.enable(0)
    evts = run(s, 0, 1000)
    first = evts[0][0]
    assert [(t - first, kind(a)) for t, a in evts[:2]] == [(0, "beacon"), (20, "uri")]
    assert kind(evts[2][1]) == "beacon" and 100 <= evts[2][0] - first <= 110
    assert evts[1][1].data == beacon.uri_advert(URI)
    assert evts[1][1].interval_ms >= evts[1][1].until_ms - evts[1][0]  # one event, not a 20 ms train
    assert beacon.parse_unprovisioned_beacon(evts[0][1].data)[2] == beacon.uri_hash(URI)
    seq = [kind(a) for t, a in evts]
    assert seq.count("uri") == 2 and seq[seq.index("uri", 2) - 1] == "beacon"  # 1st beacon and every 5th after
    assert seq.index("uri", 2) == 2 + 5


def test_pb_adv_burst_spacing_and_wrapping():
    assert adv.DEFAULTS["pb_adv_count"] == 2
    s = sched(dict(FIXED, pb_adv_count=3))
    s.enable(0)
    pdu = h("23af58508000000cd6010100010000000000000000")
    evts = run(s, 0, 300, {35: lambda s, t: s.queue(t, pdu)})
    frames = [(t, a) for t, a in evts if kind(a) == "pbadv"]
    assert [t for t, _ in frames] == [35, 55, 75]
    assert all(a.data == bytes((len(pdu) + 1, 0x29)) + pdu and not a.connectable for _, a in frames)
    # the beacon on air at 35 was preempted; beacons resume after the burst, on their own schedule
    assert beacons(evts) == [0, 100]  # the window's advert is cut at 35 and restarted at its next event
    raises(ValueError, s.queue, 0, bytes(30))


def test_urgent_first_and_retransmissions_preempt_beacons():
    s = sched(FIXED)
    s.enable(0)
    a_pdu, ack = h("0102030400aa"), h("0102030401")
    evts = run(s, 0, 400, {50: lambda s, t: s.queue(t, a_pdu), 60: lambda s, t: s.queue(t, ack, urgent=True)})
    seq = [(t, a.data[2:]) for t, a in evts if kind(a) == "pbadv"]
    assert seq == [(50, a_pdu), (60, ack), (80, ack), (100, a_pdu)]
    # two transmissions of one PDU are always >= 20 ms apart
    last = {}
    for t, d in seq:
        assert d not in last or t - last[d] >= 20
        last[d] = t


def test_no_beacon_while_link_open_then_resume():
    s = sched(FIXED)
    s.enable(0)
    hooks = {300: lambda s, t: s.link_opened(t), 350: lambda s, t: s.prov_started(t),
             25_000: lambda s, t: s.link_closed(t, success=False)}
    evts = run(s, 0, 40_000, hooks)
    assert not [t for t, a in evts if 300 <= t < 25_000]  # nothing at all on air: no beacon, no PB-GATT
    after = [t for t, a in evts if t >= 25_000 and kind(a) == "beacon"]
    assert after and after[0] == 30_000
    t, a = [(t, a) for t, a in evts if t >= 25_000][0]
    assert t == 25_000 and kind(a) == "gatt" and a.interval_ms == 500  # PB-GATT restarts at once, fast again


def test_response_jitter_on_a_new_link():
    delays = set()
    for seed in range(12):
        s = sched(FIXED, seed=seed)
        s.enable(0)
        hooks = {1234: lambda s, t: (s.link_opened(t), s.queue(t, h("23af58500007")))}
        evts = run(s, 0, 1500, hooks)
        first = [t for t, a in evts if kind(a) == "pbadv"][0]
        assert 0 <= first - 1234 <= 50
        delays.add(first - 1234)
    assert len(delays) >= 6
    # only the first response waits: later frames on the same link go at once
    s = sched(FIXED)
    s.enable(0)
    hooks = {0: lambda s, t: (s.link_opened(t), s.queue(t, b"\x01")), 500: lambda s, t: s.queue(t, b"\x02")}
    evts = run(s, 0, 600, hooks)
    assert [t for t, a in evts if a.data[2:] == b"\x02"][0] == 500


def _intervals(s, t0, t1):
    ts = beacons(run(s, t0, t1))
    return [b - a for a, b in zip(ts, ts[1:]) if b - a < 5000]


def test_stall_backoff_doubles_to_cap_and_resets_when_quiet():
    s = sched(dict(gatt=False, window_jitter_ms=0, on_ms=5000))
    s.enable(0)
    t = 0
    for level in range(1, 7):
        s.link_opened(t)
        s.poll(t + 499)
        assert s.backoff == min(level - 1, 4)
        s.poll(t + 500)  # no Provisioning Start within 500 ms
        assert s.backoff == min(level, 4)
        s.link_closed(t + 800)  # the failure of the same link does not count twice
        assert s.backoff == min(level, 4)
        t += 1000
    gaps = _intervals(s, t, t + 20_000)
    assert gaps and min(gaps) >= 1600 and max(gaps) <= 1760  # 100-110 ms x 16, no further
    s.poll(t + 59_000)
    assert s.backoff == 4
    s.poll(t - 200 + 60_000)  # 60 s after the last link closed, with no link since
    assert s.backoff == 0


def test_prov_start_in_time_and_success_do_not_back_off():
    s = sched(dict(gatt=False))
    s.enable(0)
    s.link_opened(100)
    s.prov_started(300)
    s.poll(5000)
    assert s.backoff == 0
    s.link_closed(9000, success=True)
    assert s.backoff == 0
    s.link_opened(10_000)
    s.link_closed(10_100)  # a failed attempt
    assert s.backoff == 1
    s.disable()  # provisioned after all: back to 1x
    assert s.backoff == 0


def test_provisioned_stops_beacons_but_drains_frames():
    s = sched()
    s.enable(0)
    hooks = {100: lambda s, t: (s.link_opened(t), s.prov_started(t)),
             5000: lambda s, t: (s.queue(t, b"\x09\x09"), s.link_closed(t, success=True), s.disable())}
    evts = run(s, 0, 60_000, hooks)
    late = [(t, kind(a)) for t, a in evts if t >= 5000]
    assert late == [(5000, "pbadv"), (5020, "pbadv")]
    assert s.deadline() is None


def test_rolling_uuid_frozen_during_link_and_followed_after():
    secret = bytes(range(16))
    r = RollingUuid(secret, 100)
    s = adv.Scheduler(r, 0, None, dict(FIXED, gatt=False), Rand(1))
    s.enable(0)
    hooks = {2000: lambda s, t: s.link_opened(t, gatt=True), 3000: lambda s, t: r.update(101),
             12_000: lambda s, t: s.link_closed(t)}
    evts = run(s, 0, 25_000, hooks)
    uuids = [(t, beacon.parse_unprovisioned_beacon(a.data)[0]) for t, a in evts]
    assert all(u == derive(secret, 100) for t, u in uuids if t < 12_000)
    assert r.period == 101 and not r.frozen  # the change held back during the link took effect at close
    assert [u for t, u in uuids if t >= 12_000] and all(u == derive(secret, 101) for t, u in uuids if t >= 12_000)


def test_every_advert_is_legal():
    s = sched(seed=9, uri=URI)
    s.enable(0)
    hooks = {15_000: lambda s, t: s.link_opened(t), 15_010: lambda s, t: s.queue(t, bytes(29), urgent=True),
             17_000: lambda s, t: s.link_closed(t)}
    evts = run(s, 0, 90_000, hooks)
    assert len(evts) > 60
    for t, a in evts:
        assert len(a.data) <= 31 and a.interval_ms >= 20 and a.until_ms > t
        assert a.resp is None or len(a.resp) <= 31
