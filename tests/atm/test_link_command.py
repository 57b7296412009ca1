"""``atm link decode``: hex or file in, masked elements out, MAC checked on request."""

from atm.cli import main
from tests.protocol.doc_examples import TAK, examples, frame

WITHDRAWAL = frame(examples()[6][1])
ADVICE = frame(examples()[8][1])


def test_decodes_hex_with_pan_masked_and_secrets_hidden(capsys):
    assert main(["link", "decode", WITHDRAWAL.hex(" ")]) == 0
    out = capsys.readouterr().out
    assert "MTI 0200" in out and "400000******7899" in out
    assert "4000001234567899" not in out
    assert "[8 bytes hidden]" in out  # PIN block and MAC


def test_decodes_every_frame_of_a_binary_file_and_checks_macs(tmp_path, capsys):
    capture = tmp_path / "capture.bin"
    capture.write_bytes(WITHDRAWAL + ADVICE)
    assert main(["link", "decode", str(capture), "--mac-key", TAK.hex()]) == 0
    out = capsys.readouterr().out
    assert "frame 2:" in out and "MTI 0420" in out
    assert out.count("MAC verifies") == 2
    assert TAK.hex().upper() not in out.upper()


def test_hex_text_file_and_raw_message(tmp_path, capsys):
    text = tmp_path / "capture.txt"
    text.write_text(WITHDRAWAL.hex() + "\n")
    assert main(["link", "decode", str(text)]) == 0
    assert main(["link", "decode", "--raw", WITHDRAWAL[2:].hex()]) == 0
    assert capsys.readouterr().out.count("MTI 0200") == 2


def test_bad_mac_and_bad_input(capsys):
    assert main(["link", "decode", WITHDRAWAL.hex(), "--mac-key", "00" * 16]) == 1
    assert "MAC check failed" in capsys.readouterr().out
    assert main(["link", "decode", "not-hex-and-no-file"]) == 2
    assert main(["link", "decode", WITHDRAWAL[:-3].hex()]) == 1
    assert "no complete frame" in capsys.readouterr().err


def test_reads_the_hex_dumps_of_the_protocol_document(capsys):
    """docs/protocol.md's annotated examples, as they are printed there (offset, hex, ASCII
    columns): every example decodes, and the one under the TAK verifies."""
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
    assert main(["link", "decode", str(doc)]) == 0
    out = capsys.readouterr().out
    assert out.count("frame ") == len(examples())
    assert "DE 39 Response Code                00 (Approved)" in out


def test_reads_a_trace_dump_with_log_text_around_it(capsys):
    from protocol.hexdump import hexdump, parse_hexdump

    trace = "\n".join(
        [
            "link ATM -> HOST 0200 (168 bytes)",
            hexdump(WITHDRAWAL),
            "link HOST -> ATM ...",
            hexdump(ADVICE),
        ]
    )
    assert parse_hexdump(trace) == WITHDRAWAL + ADVICE
    assert main(["link", "decode", trace, "--mac-key", TAK.hex()]) == 0
    assert capsys.readouterr().out.count("MAC verifies") == 2
    # A bad MAC is a failed check: exit 1.
    assert main(["link", "decode", hexdump(WITHDRAWAL), "--mac-key", "11" * 16]) == 1
    assert "MAC check failed" in capsys.readouterr().out
