# A level and three tiny functions (as aioble does), not a framework.
# Callers pass a tag and a %-format; nothing secret (keys, AuthValues, UUID secret) is ever an argument.
ERROR = 0
INFO = 1
DEBUG = 2

level = INFO

sink = print  # replaceable: tests capture every line, the firmware may mirror to a file


def _emit(lvl, name, tag, msg, args):
    if lvl <= level:
        sink("[%s] %s: %s" % (name, tag, (msg % args) if args else msg))


def error(tag, msg, *args):
    _emit(ERROR, "E", tag, msg, args)


def info(tag, msg, *args):
    _emit(INFO, "I", tag, msg, args)


def debug(tag, msg, *args):
    _emit(DEBUG, "D", tag, msg, args)
