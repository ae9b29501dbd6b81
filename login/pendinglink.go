package login

import (
	"log/slog"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/storage"
)

// PendingLinks is a capability of a Part (login/upstream), found by type assertion.
// An upstream identity that was verified but is linked to no account waits in a
// short-lived flow for the person to sign in another way: the sign-in pages carry the
// flow as the `link` value (URL or form) and, once the person has signed in with a
// password or a code, link the identity to that account before they continue.
type PendingLinks interface {
	// PendingLink names what the flow would link, for the sentence "Войдите, и
	// {what} будет привязан к Личному кабинету": "аккаунт Telegram", "сертификат
	// Иванов Иван Иванович". ok is false when the flow is gone, used up, or was
	// started in another browser.
	PendingLink(c echo.Context, flowID string) (what string, ok bool)
	// LinkPending uses the flow up, links its identity to u and records it.
	LinkPending(c echo.Context, flowID string, u *storage.User) error
}

// pendingLinksParts are the parts that keep pending links (upstream sign-in, the
// certificate), in the parts' order.
func (a *App) pendingLinksParts() []PendingLinks {
	var out []PendingLinks
	for _, p := range a.parts {
		if l, ok := p.(PendingLinks); ok {
			out = append(out, l)
		}
	}
	return out
}

// readLink checks a `link` value of a sign-in page: the flow and what it links, or
// empty strings when there is nothing (valid) to link. Flow ids are random, so the
// one part that knows the flow answers.
func (a *App) readLink(c echo.Context, flowID string) (string, string) {
	if flowID == "" || len(flowID) > 64 {
		return "", ""
	}
	for _, l := range a.pendingLinksParts() {
		if title, ok := l.PendingLink(c, flowID); ok {
			return flowID, title
		}
	}
	return "", ""
}

// linkAfterSignIn links the pending identity of flowID to u, who has just signed in.
// The sign-in stands whatever happens here; a failure is logged.
func (a *App) linkAfterSignIn(c echo.Context, flowID string, u *storage.User) {
	if flowID == "" || len(flowID) > 64 {
		return
	}
	for _, l := range a.pendingLinksParts() {
		if _, ok := l.PendingLink(c, flowID); !ok {
			continue
		}
		if err := l.LinkPending(c, flowID, u); err != nil {
			slog.WarnContext(c.Request().Context(), "pending link not made", "user", u.ID, "err", err)
		}
		return
	}
	slog.WarnContext(c.Request().Context(), "pending link gone before sign-in ended", "user", u.ID)
}

// withLink adds the `link` value to a page URL of ours.
func withLink(u, flowID string) string {
	if flowID == "" {
		return u
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "link=" + url.QueryEscape(flowID)
}
