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


def test_a_block_hears_its_own_thread_only_and_blocks_on_two_threads_close_in_any_order():
    import threading
    logger = logging.getLogger("engine")
    level, propagate = logger.level, logger.propagate
    mine, theirs = [], []
    opened, release = threading.Event(), threading.Event()

    def other():
        with notes_to(theirs.append):
            opened.set()
            logging.getLogger("engine.y").info("from the other thread")
            release.wait(10)
    t = threading.Thread(target=other)
    with notes_to(mine.append):
        t.start()
        opened.wait(10)
        logging.getLogger("engine.y").info("from this thread")
    # this block closed first, the other is still open: the engine's notes are still routed
    assert logger.getEffectiveLevel() <= logging.INFO
    release.set()
    t.join()
    assert mine == ["from this thread"] and theirs == ["from the other thread"]
    assert (logger.level, logger.propagate) == (level, propagate)


def test_a_script_with_its_own_logging_sees_a_note_once(capsys):
    root = logging.getLogger()
    handler = logging.StreamHandler()        # what logging.basicConfig() adds
    root.addHandler(handler)
    try:
        got = []
        with notes_to(got.append):
            logging.getLogger("engine.z").warning("one note")
    finally:
        root.removeHandler(handler)
    assert got == ["one note"] and "one note" not in capsys.readouterr().err
