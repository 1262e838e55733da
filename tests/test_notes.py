"""engine.notes: the engine's INFO lines reach whoever listens, only while they listen."""
import logging

from engine.notes import notes_to


def test_info_lines_of_the_engine_reach_the_callback_only_inside_the_block():
    got = []
    log = logging.getLogger("engine.neural.compiled")
    before = logging.getLogger("engine").level
    with notes_to(got.append):
        log.info("building %s", "it")
        log.debug("not this")
        logging.getLogger("elsewhere").warning("nor this")
    log.info("after the block")
    assert got == ["building it"]
    assert logging.getLogger("engine").level == before


def test_not_shown_routes_nothing_and_a_failing_callback_breaks_nothing():
    got = []
    with notes_to(got.append, shown=False):
        logging.getLogger("engine.x").info("quiet run")
    assert got == []

    def broken(text):
        raise RuntimeError("the window is gone")
    logging.raiseExceptions, was = False, logging.raiseExceptions
    try:
        with notes_to(broken):
            logging.getLogger("engine.x").info("still fine")   # no exception reaches the caller
    finally:
        logging.raiseExceptions = was
