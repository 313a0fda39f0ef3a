package fuzz

// consumer turns fuzz bytes into choices, one byte at a time, so that the
// fuzzer's mutations of a byte change one choice. Past the end it answers
// zero: the first option of every choice, the shortest lists.
type consumer struct {
	data []byte
}

// byte returns the next byte, or 0 past the end.
func (c *consumer) byte() byte {
	if len(c.data) == 0 {
		return 0
	}
	b := c.data[0]
	c.data = c.data[1:]
	return b
}

// intn returns a number in [0, n).
func (c *consumer) intn(n int) int {
	return int(c.byte()) % n
}

// bool returns the next byte's low bit.
func (c *consumer) bool() bool {
	return c.byte()&1 == 1
}

// uint16 returns the next two bytes as a number.
func (c *consumer) uint16() uint16 {
	return uint16(c.byte())<<8 | uint16(c.byte())
}

// pick returns one of options.
func pick[T any](c *consumer, options ...T) T {
	return options[c.intn(len(options))]
}
