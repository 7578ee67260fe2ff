"""The network: cells, recurrences, encoder, bridge, attention, decoder and the Seq2Seq model."""
