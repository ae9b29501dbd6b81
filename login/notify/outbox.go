package notify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// OutboxEntry is one line of the outbox file. The field order is the contract:
// {"channel":"sms"|"email","to":"…","code":"123456","text":"…","created_at":"RFC3339"}.
type OutboxEntry struct {
	Channel   Channel `json:"channel"`
	To        string  `json:"to"`
	Code      string  `json:"code"`
	Text      string  `json:"text"`
	CreatedAt string  `json:"created_at"` // RFC 3339, UTC
}

// Outbox appends every delivered message to a file, one JSON object a line
// (IDP_OUTBOX). It is safe for concurrent use, also by several processes appending
// to the same file: each Append opens the file with O_APPEND and writes its whole
// line with one write, so lines never interleave. Opening per append also lets a
// test truncate or remove the file between runs.
type Outbox struct {
	path string
	now  func() time.Time
}

// OpenOutbox checks that path can be appended to and returns the Outbox. The parent
// directory must exist; the file is created (empty, mode 0600) when missing, so an
// unwritable path is reported at start rather than at the first code.
func OpenOutbox(path string) (*Outbox, error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("directory %q does not exist", dir)
	case err != nil:
		return nil, err
	case !st.IsDir():
		return nil, fmt.Errorf("%q is not a directory", dir)
	}
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &Outbox{path: path, now: time.Now}, nil
}

// Path is the file the outbox appends to.
func (o *Outbox) Path() string { return o.path }

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%q is not a regular file", path)
		}
		return nil, err
	}
	return f, nil
}

// Append writes m as one line.
func (o *Outbox) Append(m Message) error {
	line, err := encodeEntry(OutboxEntry{
		Channel:   m.Channel,
		To:        m.To,
		Code:      m.Code,
		Text:      m.Text,
		CreatedAt: o.now().UTC().Format(time.RFC3339),
	})
	if err != nil {
		return err
	}
	f, err := openAppend(o.path)
	if err != nil {
		return err
	}
	// One write of the whole line: with O_APPEND the kernel places it at the end of
	// the file atomically with respect to other appenders.
	_, werr := f.Write(line)
	cerr := f.Close()
	return errors.Join(werr, cerr)
}

// encodeEntry is the JSON line with its newline. HTML escaping is off so the text
// stays as written.
func encodeEntry(e OutboxEntry) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil { // Encode ends the line with '\n'
		return nil, err
	}
	return b.Bytes(), nil
}

// ReadOutbox returns every entry of the outbox file at path, oldest first. It is for
// tests that fetch the code a flow sent; a missing file reads as empty.
func ReadOutbox(path string) ([]OutboxEntry, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []OutboxEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e OutboxEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return out, fmt.Errorf("outbox %s line %d: %w", path, n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
