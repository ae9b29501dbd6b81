package admin

import (
	"flag"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/password"
	"github.com/astral/idp/storage"
)

// Password rules of `idp user add`. The maximum is the sign-in page's, in bytes, so
// no account is created with a password nobody could sign in with.
const (
	minPasswordRunes = 8
	maxPasswordBytes = password.MaxLength
	maxNameRunes     = 200 // storage.User's name columns
	defaultUserLimit = 100
	maxUserLimit     = 10000
)

// Audit event kinds recorded by block and unblock.
const (
	eventBlocked   = "blocked"
	eventUnblocked = "unblocked"
)

func userGroup() group {
	return group{
		name:    "user",
		summary: "manage people's accounts",
		commands: []command{
			{
				name:     "add",
				synopsis: "(--phone PHONE | --email EMAIL) --password-stdin [flags]",
				summary:  "create an account; the password is read from standard input",
				help: `
Creates an account with a phone number or an email address (exactly one of them)
and a password, and prints the new account's id. The phone or email is marked
verified: the administrator vouches for it. Flags may be given in any order; the
command takes no other arguments.

The password is read from the first line of standard input and --password-stdin is
required: passwords are never accepted on the command line. It must be 8 to 256
characters long and must not be the phone number or email itself.`,
				example: `
idp user add --phone "+7 910 594-08-99" --given-name Иван --family-name Петров --password-stdin < password.txt
printf '%s\n' "$PASSWORD" | idp user add --email ivan@example.ru --password-stdin`,
				order: []string{"phone", "email", "password-stdin", "family-name", "given-name", "middle-name"},
				flags: (*runner).userAdd,
			},
			{
				name:     "list",
				synopsis: "[--limit N] [--offset N]",
				summary:  "show accounts, oldest first",
				help: `
Lists accounts in the order they were created: id, phone, email, whether the
account is blocked and when it was created (UTC). Passwords and their hashes are
never shown. Use --limit and --offset to page through many accounts.`,
				example: `
idp user list
idp user list --limit 50 --offset 50`,
				flags: (*runner).userList,
			},
			{
				name:     "block",
				synopsis: "USER",
				summary:  "block an account, end its sessions and revoke its tokens",
				help: `
Blocks the account USER: an account id, a phone number in any writing, or an email
address. The account can no longer sign in; every one of its sessions ends and
every token issued to it is revoked at once. The running server then sends
back-channel logout to the products of the ended sessions that asked for it.
An id that starts with "-" goes after "--": idp user block -- -Xy1…`,
				example: `
idp user block "+7 (910) 594-08-99"
idp user block ivan@example.ru`,
				flags: func(r *runner, _ *flag.FlagSet) func([]string) error { return r.setBlocked("user block", true) },
			},
			{
				name:     "unblock",
				synopsis: "USER",
				summary:  "let a blocked account sign in again",
				help: `
Unblocks the account USER: an account id, a phone number in any writing, or an
email address. The person can sign in again; sessions and tokens ended by the
block stay ended. An id that starts with "-" goes after "--".`,
				example: `idp user unblock 89105940899`,
				flags: func(r *runner, _ *flag.FlagSet) func([]string) error {
					return r.setBlocked("user unblock", false)
				},
			},
			{
				name:     "events",
				synopsis: "USER [--limit N]",
				summary:  "show an account's sign-ins, failed attempts and changes, newest first",
				help: `
Shows the audit events of the account USER (an account id, a phone number in any
writing, or an email address), newest first: the time (UTC), the kind of event
(signin, signin_failed, password_changed, blocked, …), how the person proved who
they were (pwd, otp, fed, …), the product (client id), the IP address and the
detail. These are the events the account's own "История входов" page shows.
An id that starts with "-" goes after "--".`,
				example: `
idp user events "+7 (910) 594-08-99"
idp user events ivan@example.ru --limit 500`,
				flags: (*runner).userEvents,
			},
		},
	}
}

func (r *runner) userAdd(fs *flag.FlagSet) func([]string) error {
	phone := fs.String("phone", "", "the account's Russian mobile `PHONE` number, in any writing: +7 910 594-08-99, 89105940899")
	email := fs.String("email", "", "the account's `EMAIL` address")
	passwordStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input (required)")
	family := fs.String("family-name", "", "the person's family `NAME` (фамилия)")
	given := fs.String("given-name", "", "the person's given `NAME` (имя)")
	middle := fs.String("middle-name", "", "the person's `NAME` after the given name (отчество)")

	return func(args []string) error {
		const cmd = "user add"
		if err := noArgs(cmd, args, "a password is read from standard input with --password-stdin"); err != nil {
			return err
		}
		rawPhone, rawEmail := strings.TrimSpace(*phone), strings.TrimSpace(*email)
		switch {
		case rawPhone != "" && rawEmail != "":
			return usagef(cmd, "give either --phone or --email, not both: an account is created with one of them")
		case rawPhone == "" && rawEmail == "":
			return usagef(cmd, "give the account's --phone or --email")
		}
		if !*passwordStdin {
			return usagef(cmd, "passwords are read from standard input only: add --password-stdin and give the password on the first line of standard input")
		}
		var who contact.Contact
		var err error
		if rawPhone != "" {
			if who, err = contact.ParsePhone(rawPhone); err != nil {
				return usagef(cmd, "--phone %q is not a Russian mobile number: write it like +7 910 594-08-99", rawPhone)
			}
		} else if who, err = contact.ParseEmail(rawEmail); err != nil {
			return usagef(cmd, "--email %q is not a valid email address: write it like name@example.ru", rawEmail)
		}
		names := map[string]*string{"--family-name": family, "--given-name": given, "--middle-name": middle}
		for _, flagName := range []string{"--family-name", "--given-name", "--middle-name"} {
			v := names[flagName]
			*v = strings.TrimSpace(*v)
			if n := utf8.RuneCountInString(*v); n > maxNameRunes {
				return usagef(cmd, "%s is too long (%d characters): at most %d", flagName, n, maxNameRunes)
			}
		}

		st, err := r.open()
		if err != nil {
			return err
		}
		if err := contactTaken(r, st, who); err != nil {
			return err
		}
		pw, err := readLine(r.env.Stdin, "the password", "idp user add … --password-stdin < password.txt")
		if err != nil {
			return err
		}
		if err := checkPassword(pw, who, rawPhone+rawEmail); err != nil {
			return err
		}
		hash, err := password.NewHasher(password.DefaultParams).Hash(pw)
		if err != nil {
			return failf("hash the password: %v", err)
		}
		u := &storage.User{
			PasswordHash: hash,
			FamilyName:   *family,
			GivenName:    *given,
			MiddleName:   *middle,
		}
		if who.Kind == contact.Phone {
			u.Phone, u.PhoneVerified = &who.Value, true
		} else {
			u.Email, u.EmailVerified = &who.Value, true
		}
		if err := st.CreateUser(r.ctx, u); err != nil {
			if storage.IsConflict(err) {
				if err := contactTaken(r, st, who); err != nil {
					return err
				}
			}
			return failf("create the account: %v", err)
		}
		r.out("Created account %s for %s; the %s is marked verified.\n", u.ID, showContact(who), who.Kind)
		return nil
	}
}

// checkPassword applies the sign-up page's password rules (password.Check), in
// English; the password is never put in a message.
func checkPassword(pw string, who contact.Contact, raw string) error {
	if !utf8.ValidString(pw) {
		return failf("the password on standard input is not UTF-8 text")
	}
	switch password.Check(pw, who.Value, raw) {
	case nil:
		return nil
	case password.ErrEmptyNew:
		return failf("the password on standard input is empty")
	case password.ErrTooShort:
		return failf("the password is too short (%d characters): at least %d", utf8.RuneCountInString(pw), password.MinLength)
	case password.ErrTooLong:
		return failf("the password is too long (%d bytes): at most %d bytes, the most the sign-in page accepts", len(pw), password.MaxLength)
	case password.ErrSameAsLogin:
		if who.Kind == contact.Phone {
			return failf("the password must not be the account's phone number")
		}
		return failf("the password must not be the account's email address")
	case password.ErrTooCommon:
		return failf("the password is on the list of common passwords: choose another")
	}
	return failf("the password does not meet the rules")
}

// contactTaken reports a clear error when an account already has who.
func contactTaken(r *runner, st *storage.Store, who contact.Contact) error {
	var u *storage.User
	var err error
	if who.Kind == contact.Phone {
		u, err = st.UserByPhone(r.ctx, who.Value)
	} else {
		u, err = st.UserByEmail(r.ctx, who.Value)
	}
	switch {
	case storage.IsNotFound(err):
		return nil
	case err != nil:
		return failf("look up the %s: %v", who.Kind, err)
	}
	return failf("an account with the %s %s already exists (id %s)", who.Kind, showContact(who), u.ID)
}

func showContact(c contact.Contact) string {
	if c.Kind == contact.Phone {
		return contact.FormatPhone(c.Value)
	}
	return c.Value
}

func (r *runner) userList(fs *flag.FlagSet) func([]string) error {
	limit := fs.Int("limit", defaultUserLimit, fmt.Sprintf("show at most `N` accounts (1 to %d)", maxUserLimit))
	offset := fs.Int("offset", 0, "skip the first `N` accounts")
	return func(args []string) error {
		const cmd = "user list"
		switch {
		case len(args) > 0:
			return usagef(cmd, "unexpected argument %q: user list takes flags only", args[0])
		case *limit < 1 || *limit > maxUserLimit:
			return usagef(cmd, "--limit must be from 1 to %d", maxUserLimit)
		case *offset < 0:
			return usagef(cmd, "--offset must not be negative")
		}
		st, err := r.open()
		if err != nil {
			return err
		}
		users, err := st.ListUsers(r.ctx, *offset, *limit)
		if err != nil {
			return failf("list accounts: %v", err)
		}
		tw := newTable(r.env.Stdout)
		fmt.Fprintln(tw, "ID\tPHONE\tEMAIL\tBLOCKED\tCREATED")
		for _, u := range users {
			phone, email := "", ""
			if u.Phone != nil {
				phone = contact.FormatPhone(*u.Phone)
			}
			if u.Email != nil {
				email = *u.Email
			}
			blocked := "no"
			if u.Blocked {
				blocked = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cell(u.ID), cell(phone), cell(email), blocked,
				u.CreatedAt.UTC().Format(time.RFC3339))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(users) == *limit {
			fmt.Fprintf(r.env.Stderr, "idp: showed %s from offset %d; there may be more: idp user list --offset %d\n",
				plural(len(users), "account", "accounts"), *offset, *offset+len(users))
		}
		return nil
	}
}

// defaultEventLimit is how many events `idp user events` shows unless told.
const defaultEventLimit = 50

func (r *runner) userEvents(fs *flag.FlagSet) func([]string) error {
	limit := fs.Int("limit", defaultEventLimit, fmt.Sprintf("show at most `N` events, the newest (1 to %d)", maxUserLimit))
	return func(args []string) error {
		const cmd = "user events"
		switch {
		case len(args) != 1:
			return usagef(cmd, "name exactly one account: idp user events USER (an id, a phone number or an email)")
		case *limit < 1 || *limit > maxUserLimit:
			return usagef(cmd, "--limit must be from 1 to %d", maxUserLimit)
		}
		st, err := r.open()
		if err != nil {
			return err
		}
		u, err := findUser(r, st, args[0])
		if err != nil {
			return err
		}
		events, err := st.UserEvents(r.ctx, u.ID, 0, *limit)
		if err != nil {
			return failf("list the events of account %s: %v", u.ID, err)
		}
		if len(events) == 0 {
			r.out("Account %s has no events.\n", describeUser(u))
			return nil
		}
		tw := newTable(r.env.Stdout)
		fmt.Fprintln(tw, "TIME\tKIND\tMETHOD\tCLIENT\tIP\tDETAIL")
		for _, e := range events {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.CreatedAt.UTC().Format(time.RFC3339), cell(e.Kind),
				cell(e.Method), cell(e.ClientID), cell(e.IP), cell(e.Detail))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(events) == *limit {
			fmt.Fprintf(r.env.Stderr, "idp: showed the newest %s; there may be more: idp user events %s --limit %d\n",
				plural(len(events), "event", "events"), u.ID, min(*limit*2, maxUserLimit))
		}
		return nil
	}
}

// setBlocked returns the runner of `idp user block` (blocked) or `idp user unblock`.
func (r *runner) setBlocked(cmd string, blocked bool) func([]string) error {
	return func(args []string) error {
		if len(args) != 1 {
			return usagef(cmd, "name exactly one account: idp %s USER (an id, a phone number or an email)", cmd)
		}
		st, err := r.open()
		if err != nil {
			return err
		}
		u, err := findUser(r, st, args[0])
		if err != nil {
			return err
		}
		was := u.Blocked
		ended, err := st.SetUserBlocked(r.ctx, u.ID, blocked)
		if err != nil {
			if storage.IsNotFound(err) {
				return noUser(args[0])
			}
			return failf("%s account %s: %v", strings.TrimPrefix(cmd, "user "), u.ID, err)
		}
		kind, detail := eventUnblocked, "by an administrator (idp user unblock)"
		if blocked {
			kind, detail = eventBlocked, "by an administrator (idp user block)"
		}
		if was != blocked {
			if err := st.RecordEvent(r.ctx, &storage.AuditEvent{UserID: u.ID, Kind: kind, Detail: detail}); err != nil {
				fmt.Fprintf(r.env.Stderr, "idp: warning: the audit event was not recorded: %s\n", oneLine(err.Error()))
			}
		}

		name := describeUser(u)
		if !blocked {
			if !was {
				r.out("Account %s was not blocked; nothing changed.\n", name)
				return nil
			}
			r.out("Unblocked account %s: it can sign in again.\n", name)
			return nil
		}
		if was {
			r.out("Account %s was already blocked.\n", name)
		} else {
			r.out("Blocked account %s: it can no longer sign in.\n", name)
		}
		if len(ended) == 0 {
			r.out("No session was open; every token of the account is revoked.\n")
			return nil
		}
		queued, counted := 0, true
		for _, s := range ended {
			d, err := st.LogoutDeliveries(r.ctx, s.ID)
			if err != nil {
				counted = false
				break
			}
			queued += len(d)
		}
		r.out("Ended %s and revoked every token of the account.\n", plural(len(ended), "session", "sessions"))
		switch {
		case !counted:
			r.out("The running server sends back-channel logout to the products of those sessions that asked for it.\n")
		case queued == 0:
			r.out("None of the products of those sessions asked for back-channel logout.\n")
		default:
			r.out("The running server will send back-channel logout to their products (%s queued).\n",
				plural(queued, "notification", "notifications"))
		}
		return nil
	}
}

// findUser finds an account by id, by phone number in any writing, or by email.
func findUser(r *runner, st *storage.Store, arg string) (*storage.User, error) {
	s := strings.TrimSpace(arg)
	var u *storage.User
	var err error
	if strings.Contains(s, "@") {
		email := strings.ToLower(s)
		if c, perr := contact.ParseEmail(s); perr == nil {
			email = c.Value
		}
		u, err = st.UserByEmail(r.ctx, email)
	} else {
		u, err = st.UserByID(r.ctx, s)
		if storage.IsNotFound(err) {
			if c, perr := contact.ParsePhone(s); perr == nil {
				u, err = st.UserByPhone(r.ctx, c.Value)
			}
		}
	}
	switch {
	case storage.IsNotFound(err):
		return nil, noUser(arg)
	case err != nil:
		return nil, failf("look up account %q: %v", arg, err)
	}
	return u, nil
}

func noUser(arg string) error {
	return failf("no account has the id, phone number or email %q (see: idp user list)", arg)
}

// describeUser names an account in messages: its id and its phone or email.
func describeUser(u *storage.User) string {
	switch {
	case u.Phone != nil:
		return fmt.Sprintf("%s (%s)", u.ID, contact.FormatPhone(*u.Phone))
	case u.Email != nil:
		return fmt.Sprintf("%s (%s)", u.ID, *u.Email)
	}
	return u.ID
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
