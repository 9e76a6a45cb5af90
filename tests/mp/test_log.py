from mesh import log


def test_levels_and_sink():
    lines = []
    old_sink, old_level = log.sink, log.level
    log.sink = lines.append
    try:
        log.level = log.INFO
        log.info("adv", "beacon every %d ms", 100)
        log.debug("adv", "hidden")
        log.error("prov", "failed %s", "x")
    finally:
        log.sink, log.level = old_sink, old_level
    assert lines == ["[I] adv: beacon every 100 ms", "[E] prov: failed x"]
