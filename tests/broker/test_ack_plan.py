"""Which acks the coalescer sends while some messages are still in hand (pure logic)."""

from hookyard_common.broker.consumer import ack_plan


def test_nothing_in_hand_is_one_multiple_ack():
    assert ack_plan(set(), [3, 1, 2]) == (3, [])


def test_messages_finished_after_one_in_hand_are_acked_one_by_one():
    # Tag 4 hangs: 1-3 go in one multiple ack, 5 and 7 singly, never waiting for 4.
    assert ack_plan({4, 6}, [1, 7, 2, 3, 5]) == (3, [5, 7])


def test_the_oldest_in_hand_first_means_only_single_acks():
    assert ack_plan({1}, [2, 3]) == (None, [2, 3])
    assert ack_plan({1}, []) == (None, [])
