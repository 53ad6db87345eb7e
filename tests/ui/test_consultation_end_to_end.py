"""A student's request from the kiosk to a desk subscribed exactly as the installed
firmware is, and the desk's buttons back to the kiosk: the real broker (a private
mosquitto), the real ingest service with its dispatcher, the real database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from consultease.config import Settings
from consultease.tools.servers import MosquittoInstance
from kiosk_ui.model import FacultyRole
from kiosk_ui.window import KioskWindow
from tests.support.factories import add_faculty
from tests.support.firmware_desk import FirmwareDesk
from tests.support.ingest import private_broker, running_service, unique_client_id, wait_until
from tests.ui.support import running_kiosk


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoInstance]:
    with private_broker(tmp_path / "mosquitto") as instance:
        yield instance


def ask(qtbot: QtBot, window: KioskWindow, faculty_id: int) -> int:
    """A student taps the card's button, fills the form and sends it; the new id."""
    flow = window.consultations
    assert flow is not None
    qtbot.waitUntil(lambda: flow._watcher.connected, timeout=5000)
    proxy = window.board.proxy
    window.board.grid.doItemsLayout()
    [row] = [
        r for r in range(proxy.rowCount()) if proxy.index(r, 0).data(FacultyRole.ID) == faculty_id
    ]
    index = proxy.index(row, 0)
    layout = window.board.delegate.layout_card(window.board.grid.visualRect(index), index)
    assert layout.action is not None
    qtbot.mouseClick(
        window.board.grid.viewport(), Qt.MouseButton.LeftButton, pos=layout.action.center()
    )
    form = flow.form
    form.name_box.setText("Maria Santos")
    form.student_id_box.setText("2021-0042")
    form.message_box.setPlainText("Can we go over problem 3?")
    qtbot.mouseClick(form.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: flow.status_view.request is not None, timeout=5000)
    request = flow.status_view.request
    assert request is not None
    return request.id


def test_an_acknowledge_at_qos0_shows_accepted_with_the_room_on_the_kiosk_within_a_second(
    qtbot: QtBot, broker: MosquittoInstance, database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    settings = Settings(
        database_url=database_url, mqtt_url=broker.url, mqtt_client_id=unique_client_id()
    )
    with (
        running_service(settings),
        FirmwareDesk(broker.url, fid) as desk,
        running_kiosk(qtbot, database_url, consultation_requests=True) as window,
    ):
        cid = ask(qtbot, window, fid)
        wait_until(lambda: desk.received()[0], timeout=5, message="the request on the desk")
        assert desk.received()[0] == [
            f"CID:{cid} From:Maria Santos (SID:2021-0042): Can we go over problem 3?"
        ]
        assert window.consultations is not None
        view = window.consultations.status_view
        assert view.chip.text() == "Waiting"

        pressed = time.monotonic()
        desk.respond("ACKNOWLEDGE", str(cid))
        qtbot.waitUntil(lambda: view.chip.text() == "Accepted", timeout=1000)
        assert time.monotonic() - pressed < 1.0
        assert view.room.text() == "Go to Room CS-101"
        assert view.headline.text() == "Dr. Ada Lovelace will see you"


def test_busy_on_the_desk_declines_on_the_kiosk_and_the_card_turns_busy(
    qtbot: QtBot, broker: MosquittoInstance, database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    settings = Settings(
        database_url=database_url, mqtt_url=broker.url, mqtt_client_id=unique_client_id()
    )
    with (
        running_service(settings),
        FirmwareDesk(broker.url, fid) as desk,
        running_kiosk(qtbot, database_url, consultation_requests=True) as window,
    ):
        cid = ask(qtbot, window, fid)
        wait_until(lambda: desk.received()[0], timeout=5, message="the request on the desk")
        desk.respond("busy", cid)  # any case; the CID as an integer
        assert window.consultations is not None
        view = window.consultations.status_view
        qtbot.waitUntil(lambda: view.chip.text() == "Declined", timeout=2000)

        def shown() -> str | None:
            row = window.model.row_of(fid)
            return None if row is None else window.model.view_at(row).shown_status

        qtbot.waitUntil(lambda: shown() == "busy", timeout=2000)


def test_a_cancel_at_the_kiosk_reaches_the_desk_as_the_firmware_expects_it(
    qtbot: QtBot, broker: MosquittoInstance, database_url: str, db: psycopg.Connection[Any]
) -> None:
    fid = add_faculty(db, name="Dr. Ada Lovelace", status="available", desk_online=True)
    settings = Settings(
        database_url=database_url, mqtt_url=broker.url, mqtt_client_id=unique_client_id()
    )
    with (
        running_service(settings),
        FirmwareDesk(broker.url, fid) as desk,
        running_kiosk(qtbot, database_url, consultation_requests=True) as window,
    ):
        cid = ask(qtbot, window, fid)
        wait_until(lambda: desk.received()[0], timeout=5, message="the request on the desk")
        assert window.consultations is not None
        view = window.consultations.status_view
        qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: view.chip.text() == "Cancelled", timeout=3000)
        wait_until(lambda: desk.received()[1], timeout=5, message="the cancellation on the desk")
        [cancellation] = desk.received()[1]
        assert cancellation["type"] == "consultation_cancelled"
        assert cancellation["consultation_id"] == cid
        assert cancellation["student_name"] == "Maria Santos"
