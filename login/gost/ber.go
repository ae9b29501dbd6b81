package gost

// BER to DER, written by hand. CryptoPro CSP (through its browser plugin) and
// the older CryptoAPI streaming encoder write CMS in BER: indefinite lengths
// and the content in OCTET STRING chunks. cryptobyte and encoding/asn1 read
// DER only, and no maintained Go library converts BER, so this small
// converter rewrites exactly the forms DER forbids and copies everything
// else byte for byte:
//
//   - an indefinite length (0x80 … 00 00) becomes a definite one;
//   - a long-form length that is not minimal becomes minimal;
//   - a constructed OCTET STRING (chunks) becomes one primitive OCTET STRING.
//
// It does not sort SET OF members nor touch primitive values, so a DER input
// comes out unchanged, and the signed attributes are verified over the DER
// SET the signer meant: the same members, now with definite lengths.
// Constructed forms of other string types are left as they are, for the DER
// reader to refuse. The output is never longer than the input: a definite
// header of a value under 16 MiB takes at most the 4 bytes an indefinite
// header and its end-of-contents take.

import "fmt"

// maxBERDepth bounds the nesting of constructed values. A CMS SignedData with
// its certificates nests about 12 deep; the bound keeps the recursion small.
const maxBERDepth = 32

// berToDER returns the DER form of one BER element that must span all of in.
func berToDER(in []byte) ([]byte, error) {
	if len(in) > MaxInputSize {
		return nil, fmt.Errorf("BER of %d bytes: %w", len(in), ErrTooLarge)
	}
	id, content, rest, err := readBER(in, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("BER: %d bytes after the value: %w", len(rest), ErrMalformed)
	}
	out := appendDER(make([]byte, 0, len(in)), id, content)
	if len(out) > len(in) {
		return nil, fmt.Errorf("BER: DER form longer than the input: %w", ErrMalformed) // cannot happen, see above
	}
	return out, nil
}

// readBER reads one element from in and returns its identifier octets (the
// tag, as sent), its content in DER, and what follows it in in.
func readBER(in []byte, depth int) (id, content, rest []byte, err error) {
	malformed := func(what string) error { return fmt.Errorf("BER %s: %w", what, ErrMalformed) }
	if depth > maxBERDepth {
		return nil, nil, nil, fmt.Errorf("BER nested deeper than %d: %w", maxBERDepth, ErrTooLarge)
	}
	// Identifier octets: one byte, or 0x1f followed by base-128 digits
	// (X.690 §8.1.2.4); a tag number above 2^28 is no tag of ours.
	if len(in) < 2 {
		return nil, nil, nil, malformed("truncated header")
	}
	n := 1
	if in[0]&0x1f == 0x1f {
		for {
			if n >= len(in) || n > 4 {
				return nil, nil, nil, malformed("tag")
			}
			if n == 1 && in[1] == 0x80 { // leading zero digit: not minimal
				return nil, nil, nil, malformed("tag")
			}
			n++
			if in[n-1]&0x80 == 0 {
				break
			}
		}
	}
	if in[0] == 0 {
		return nil, nil, nil, malformed("end-of-contents out of place")
	}
	id, constructed := in[:n], in[0]&0x20 != 0
	if n >= len(in) {
		return nil, nil, nil, malformed("truncated header")
	}
	// Length octets (X.690 §8.1.3): short, long (at most 4 bytes here: the
	// input is far smaller), or 0x80 for indefinite.
	lb := in[n]
	n++
	var body []byte
	indefinite := lb == 0x80
	switch {
	case lb < 0x80:
		body, rest, err = split(in[n:], int(lb))
	case indefinite:
		if !constructed {
			return nil, nil, nil, malformed("indefinite length of a primitive value")
		}
		rest = in[n:]
	case lb <= 0x84:
		k := int(lb & 0x7f)
		if len(in) < n+k {
			return nil, nil, nil, malformed("truncated length")
		}
		l := 0
		for _, b := range in[n : n+k] {
			l = l<<8 | int(b)
		}
		body, rest, err = split(in[n+k:], l)
	default:
		return nil, nil, nil, malformed("length")
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if !constructed {
		return id, body, rest, nil
	}
	// A constructed OCTET STRING (universal 4) gives its chunks' bytes.
	octets := len(id) == 1 && id[0] == 0x24
	if octets {
		id = []byte{0x04}
	}
	var children []byte
	for {
		if indefinite {
			if len(rest) >= 2 && rest[0] == 0 && rest[1] == 0 {
				rest = rest[2:]
				break
			}
			if len(rest) == 0 {
				return nil, nil, nil, malformed("missing end-of-contents")
			}
		} else if len(body) == 0 {
			break
		}
		src := &body
		if indefinite {
			src = &rest
		}
		cid, ccontent, crest, err := readBER(*src, depth+1)
		if err != nil {
			return nil, nil, nil, err
		}
		*src = crest
		if octets {
			if len(cid) != 1 || cid[0] != 0x04 {
				return nil, nil, nil, malformed("OCTET STRING chunk")
			}
			children = append(children, ccontent...)
		} else {
			children = appendDER(children, cid, ccontent)
		}
	}
	return id, children, rest, nil
}

// split cuts l bytes off the front of b.
func split(b []byte, l int) (head, tail []byte, err error) {
	if l < 0 || l > len(b) {
		return nil, nil, fmt.Errorf("BER length %d past the end: %w", l, ErrMalformed)
	}
	return b[:l], b[l:], nil
}

// appendDER appends id, the minimal definite length and content.
func appendDER(out, id, content []byte) []byte {
	out = append(out, id...)
	l := len(content)
	switch {
	case l < 0x80:
		out = append(out, byte(l))
	case l < 1<<8:
		out = append(out, 0x81, byte(l))
	case l < 1<<16:
		out = append(out, 0x82, byte(l>>8), byte(l))
	case l < 1<<24:
		out = append(out, 0x83, byte(l>>16), byte(l>>8), byte(l))
	default:
		out = append(out, 0x84, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
	}
	return append(out, content...)
}
