package certificate

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login"
	"github.com/astral/idp/login/gost"
)

// maxProxyHeader bounds the header's value: a URL-escaped PEM chain of a few certificates.
const maxProxyHeader = 32 << 10

// ParseProxyFrom reads IDP_CERT_PROXY_FROM: comma-separated CIDRs or single addresses.
func ParseProxyFrom(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/24 or an address", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pfx, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/24 or an address", f)
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}

// fromProxy reports whether the TCP peer — never a forwarded-for header, which
// anyone can write — is one of the configured proxies.
func (p *Part) fromProxy(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	for _, pfx := range p.cfg.ProxyFrom {
		if pfx.Contains(a) {
			return a, true
		}
	}
	return a, false
}

// proxyCertificates reads the header: nginx's $ssl_client_escaped_cert (URL-escaped
// PEM), a PEM, or base64 DER.
func proxyCertificates(v string) ([]*gost.Certificate, error) {
	v = strings.TrimSpace(v)
	if strings.Contains(v, "%") {
		// PathUnescape, not QueryUnescape: a '+' of base64 inside the PEM stays a '+'.
		u, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("unescape header: %w", gost.ErrMalformed)
		}
		v = u
	}
	if strings.HasPrefix(v, "-----BEGIN") {
		return gost.ParseCertificates([]byte(v))
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
	if err != nil {
		return nil, fmt.Errorf("decode header: %w", gost.ErrMalformed)
	}
	return gost.ParseCertificates(der)
}

// proxy: GET /certificate/proxy?authRequestID=… signs a linked account in with the
// client certificate a trusted TLS-terminating proxy verified and passed on.
func (p *Part) proxy(c echo.Context) error {
	ctx := c.Request().Context()
	authRequestID := c.QueryParam("authRequestID")
	if authRequestID != "" && (len(authRequestID) > 64 || p.host.PendingRequest(ctx, authRequestID) == nil) {
		p.refused(c, "proxy", "stale authorization request", nil)
		return p.pages().Error(c, http.StatusBadRequest, "Ссылка для входа устарела",
			"Вернитесь в приложение и начните вход заново.", login.PathAccount)
	}
	back := PageURL(ModeSignIn, authRequestID)
	value := ""
	if p.cfg.ProxyHeader != "" {
		value = c.Request().Header.Get(p.cfg.ProxyHeader)
	}
	if value != "" {
		if peer, ok := p.fromProxy(c.Request()); !ok {
			// Logged, then treated as absent: only the proxy may say what the TLS
			// handshake proved.
			p.refused(c, "proxy", "client certificate header from an untrusted address ignored: "+peer.String(), nil)
			value = ""
		}
	}
	if value == "" {
		return p.pages().Error(c, http.StatusUnauthorized, "Сертификат не предъявлен",
			"Браузер не передал сертификат. Выберите сертификат при подключении или войдите с подписью на странице входа по сертификату.", back)
	}
	if n, err := p.cfg.Store.Hit(ctx, "certificate:verify:ip:"+c.RealIP(), LimitWindow); err != nil {
		return p.pages().Internal(c, "count certificate attempts", err)
	} else if n > int64(p.cfg.VerifyLimit)*20 {
		// Every client behind the proxy shares its address: a looser bound.
		p.refused(c, "proxy", "too many proxy sign-ins from this address", nil)
		return p.pages().Error(c, http.StatusTooManyRequests, "Слишком много попыток",
			"Подождите несколько минут и попробуйте снова.", "")
	}
	if len(value) > maxProxyHeader {
		p.refused(c, "proxy", fmt.Sprintf("client certificate header of %d bytes", len(value)), nil)
		return p.pages().Error(c, http.StatusBadRequest, "Сертификат не принят", gost.Explain(gost.ErrTooLarge), back)
	}
	certs, err := proxyCertificates(value)
	if err == nil && len(certs) == 0 {
		err = fmt.Errorf("no certificate in the header: %w", gost.ErrMalformed)
	}
	if err == nil {
		_, err = p.cfg.Verifier.Verify(ctx, certs[0], certs[1:])
	}
	if err != nil {
		p.refused(c, "proxy", "client certificate not accepted", err)
		return p.pages().Error(c, http.StatusForbidden, "Сертификат не принят", gost.Explain(err), back)
	}
	return p.signIn(c, authRequestID, certs[0])
}
