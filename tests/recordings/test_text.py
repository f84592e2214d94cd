"""The text a recording showed (recordings.text): what the user saw, line by line, with times."""

from recordings.text import TerminalLines


def shown(*events):
    screen = TerminalLines()
    for at, text in events:
        screen.feed(at, text)
    return screen.finish()


def test_a_command_corrected_with_backspaces_is_the_corrected_line():
    # bash's readline echoes a backspace as "\b" then erase-to-end-of-line.
    typed = [(0.1, "$ "), (0.2, "cat /etc/shadwo"), (0.3, "\b\x1b[K"), (0.4, "\b\x1b[K"), (0.5, "ow"), (0.6, "\r\n")]
    assert shown(*typed) == [(0.5, "$ cat /etc/shadow")]


def test_colours_are_dropped_and_lines_split():
    ls = "\x1b[0m\x1b[01;34mnet-10.0.3.7\x1b[0m  \x1b[01;32mrun.sh\x1b[0m\r\nplain\r\n"
    assert shown((2.0, ls)) == [(2.0, "net-10.0.3.7  run.sh"), (2.0, "plain")]


def test_carriage_return_overwrites_and_the_last_state_is_kept():
    assert shown((1.0, "progress 10%\rprogress 100%\r\n")) == [(1.0, "progress 100%")]


def test_readline_redraws_delete_and_insert_in_place():
    # Left twice, insert "X" (CSI @ then the char), delete one char (CSI P).
    assert shown((0, "abcdef"), (1, "\x1b[2D\x1b[1@X"), (2, "\x1b[P"), (3, "\r\n")) == [(2, "abcdXf")]


def test_a_full_screen_program_yields_what_it_drew_at_each_position():
    drawn = "\x1b[?1049h\x1b[H\x1b[2J\x1b[1;1Htop - 10:00\x1b[5;10Hssh 10.0.3.7 --force\x1b[K"
    lines = shown((3.0, drawn), (4.0, "\x1b[?1049l"), (5.0, "$ exit\r\n"))
    assert lines == [(3.0, "top - 10:00"), (3.0, "ssh 10.0.3.7 --force"), (5.0, "$ exit")]


def test_an_escape_sequence_cut_between_two_events_is_joined():
    assert shown((1, "red \x1b[3"), (2, "1mtext\x1b[0m\r\n")) == [(2, "red text")]


def test_titles_and_bells_leave_no_trace():
    assert shown((1, "\x1b]0;user@host: ~\x07$ ls\x07\r\n")) == [(1, "$ ls")]


def test_the_line_being_drawn_is_current():
    screen = TerminalLines()
    screen.feed(1, "done\r\n$ sudo -i")
    assert screen.current() == "$ sudo -i"
