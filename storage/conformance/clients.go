package conformance

import (
	"slices"
	"testing"

	"github.com/astral/idp/storage"
)

func clientTests() []test {
	return []test{
		{"create, load and list", testClientCreateLoad},
		{"absent is not found", testClientAbsent},
		{"unique id", testClientUnique},
		{"set secret hash", testClientSecret},
		{"delete revokes the client's tokens", testClientDelete},
		{"sync file clients", testClientSync},
		{"sync refuses the id of a cli client", testClientSyncConflict},
	}
}

func sameClient(t *testing.T, got *storage.Client, want storage.Client) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.SecretHash != want.SecretHash ||
		got.Type != want.Type || got.BackchannelLogoutURI != want.BackchannelLogoutURI ||
		got.HomeURL != want.HomeURL || got.Source != want.Source ||
		!slices.Equal(got.RedirectURIs, want.RedirectURIs) ||
		!slices.Equal(got.PostLogoutRedirectURIs, want.PostLogoutRedirectURIs) ||
		!slices.Equal(got.GrantTypes, want.GrantTypes) || !slices.Equal(got.Scopes, want.Scopes) {
		t.Errorf("client loaded as\n%+v\nwant\n%+v", *got, want)
	}
}

func testClientCreateLoad(t *testing.T, e *env) {
	report := newClient("report")
	report.BackchannelLogoutURI = "https://report.example.ru/oidc/backchannel-logout"
	spa := newClient("sign")
	spa.Type, spa.SecretHash, spa.Scopes, spa.PostLogoutRedirectURIs = "spa", "", nil, nil
	for _, c := range []storage.Client{spa, report} {
		must(t, e.s.CreateClient(e.ctx, &c))
	}
	got, err := e.s.ClientByID(e.ctx, "report")
	must(t, err)
	sameClient(t, got, report)
	got, err = e.s.ClientByID(e.ctx, "sign")
	must(t, err)
	sameClient(t, got, spa)

	list, err := e.s.ListClients(e.ctx)
	must(t, err)
	if len(list) != 2 || list[0].ID != "report" || list[1].ID != "sign" {
		t.Errorf("ListClients returned %d clients %v; want report and sign, by id", len(list), list)
	}
}

func testClientAbsent(t *testing.T, e *env) {
	e.client(t, "report", "")
	_, err := e.s.ClientByID(e.ctx, "absent")
	wantNotFound(t, err, "ClientByID")
	wantNotFound(t, e.s.DeleteClient(e.ctx, "absent"), "DeleteClient")
	wantNotFound(t, e.s.SetClientSecretHash(e.ctx, "absent", "hash"), "SetClientSecretHash")
}

func testClientUnique(t *testing.T, e *env) {
	e.client(t, "report", "")
	again := newClient("report")
	wantConflict(t, e.s.CreateClient(e.ctx, &again), "CreateClient with a taken id")
}

func testClientSecret(t *testing.T, e *env) {
	e.client(t, "report", "")
	must(t, e.s.SetClientSecretHash(e.ctx, "report", "new-hash"))
	got, err := e.s.ClientByID(e.ctx, "report")
	must(t, err)
	if got.SecretHash != "new-hash" {
		t.Errorf("secret hash is %q; want new-hash", got.SecretHash)
	}
}

func testClientDelete(t *testing.T, e *env) {
	e.client(t, "report", "")
	e.client(t, "sign", "")
	u := e.user(t)
	gone := e.access(t, storage.AccessToken{ClientID: "report", UserID: u.ID})
	goneRefresh, goneRaw := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID})
	kept := e.access(t, storage.AccessToken{ClientID: "sign", UserID: u.ID})
	keptRefresh, keptRaw := e.family(t, storage.RefreshFamily{ClientID: "sign", UserID: u.ID})

	must(t, e.s.DeleteClient(e.ctx, "report"))
	_, err := e.s.ClientByID(e.ctx, "report")
	wantNotFound(t, err, "ClientByID after DeleteClient")
	if e.accessLive(t, gone.ID) || !e.familyRevoked(t, goneRefresh.ID) {
		t.Error("tokens of a deleted client are still live")
	}
	_, err = e.s.RefreshFamilyByToken(e.ctx, goneRaw, "report")
	wantNotFound(t, err, "the refresh token of a deleted client")
	if !e.accessLive(t, kept.ID) || e.familyRevoked(t, keptRefresh.ID) {
		t.Error("deleting one client revoked another client's tokens")
	}
	if _, err := e.s.RefreshFamilyByToken(e.ctx, keptRaw, "report"); err != nil {
		t.Errorf("another client's refresh token after DeleteClient: %v", err)
	}
}

func testClientSync(t *testing.T, e *env) {
	admin := e.client(t, "admin-tool", "")
	report, sign := newClient("report"), newClient("sign")
	must(t, e.s.SyncFileClients(e.ctx, []storage.Client{report, sign}))
	for _, want := range []storage.Client{report, sign} {
		want.Source = "file"
		got, err := e.s.ClientByID(e.ctx, want.ID)
		must(t, err)
		sameClient(t, got, want)
	}
	firstReport, err := e.s.ClientByID(e.ctx, "report")
	must(t, err)

	// report changes, sign leaves the file, trust arrives.
	report.Name = "Астрал.Отчет 5.0"
	report.RedirectURIs = storage.StringList{"https://report.example.ru/cb", "https://report.example.ru/cb2"}
	report.BackchannelLogoutURI = "https://report.example.ru/logout"
	trust := newClient("trust")
	must(t, e.s.SyncFileClients(e.ctx, []storage.Client{report, trust}))
	report.Source, trust.Source = "file", "file"
	got, err := e.s.ClientByID(e.ctx, "report")
	must(t, err)
	sameClient(t, got, report)
	if !got.CreatedAt.Equal(firstReport.CreatedAt) {
		t.Errorf("updating a file client moved its CreatedAt from %v to %v", firstReport.CreatedAt, got.CreatedAt)
	}
	got, err = e.s.ClientByID(e.ctx, "trust")
	must(t, err)
	sameClient(t, got, trust)
	_, err = e.s.ClientByID(e.ctx, "sign")
	wantNotFound(t, err, "a file client that left the file")
	got, err = e.s.ClientByID(e.ctx, "admin-tool")
	must(t, err)
	sameClient(t, got, *admin)

	// An empty file removes every file client and still keeps the cli one.
	must(t, e.s.SyncFileClients(e.ctx, nil))
	list, err := e.s.ListClients(e.ctx)
	must(t, err)
	if len(list) != 1 || list[0].ID != "admin-tool" {
		t.Errorf("after syncing an empty file the clients are %v; want only admin-tool", list)
	}
}

func testClientSyncConflict(t *testing.T, e *env) {
	admin := e.client(t, "report", "")
	must(t, e.s.SyncFileClients(e.ctx, []storage.Client{newClient("sign")}))

	err := e.s.SyncFileClients(e.ctx, []storage.Client{newClient("trust"), newClient("report")})
	wantConflict(t, err, "SyncFileClients with the id of a cli client")

	got, err := e.s.ClientByID(e.ctx, "report")
	must(t, err)
	sameClient(t, got, *admin)
	_, err = e.s.ClientByID(e.ctx, "trust")
	wantNotFound(t, err, "a client of a refused sync (the sync is one transaction)")
	_, err = e.s.ClientByID(e.ctx, "sign")
	must(t, err)
}
