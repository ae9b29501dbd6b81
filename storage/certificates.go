package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ConnectorCertificate is the connector of the Identity that links an e-signature
// certificate; its Subject is the certificate's thumbprint.
const ConnectorCertificate = "certificate"

// Certificate is an e-signature certificate linked to an account. The link itself is
// an Identity (connector "certificate", subject the thumbprint), so the cabinet lists
// and unlinks it like any way in and the "last way in" rule counts it; this row keeps
// what the certificate says, for finding a renewed certificate of the same person
// (SNILS) and for the cabinet. It goes with its Identity: unlinking deletes it
// (ON DELETE CASCADE).
type Certificate struct {
	IdentityID   string    `gorm:"primaryKey;size:64"`
	Identity     *Identity `gorm:"foreignKey:IdentityID;constraint:OnDelete:CASCADE"`
	UserID       string    `gorm:"index;size:64"`
	Thumbprint   string    `gorm:"uniqueIndex;size:64"` // SHA-1 of the DER, lower-case hex
	Owner        string    `gorm:"size:255"`            // "Иванов Иван Иванович"
	Organization string    `gorm:"size:255"`
	SNILS        string    `gorm:"column:snils;index;size:16"`
	INN          string    `gorm:"column:inn;size:16"`
	INNLE        string    `gorm:"column:inn_le;size:16"` // ИНН ЮЛ
	OGRN         string    `gorm:"column:ogrn;size:16"`
	OGRNIP       string    `gorm:"column:ogrnip;size:16"`
	Issuer       string    `gorm:"size:255"`
	Serial       string    `gorm:"size:128"` // hex
	NotBefore    time.Time
	NotAfter     time.Time
	DER          []byte `gorm:"column:der"`
	CreatedAt    time.Time
}

// fit cuts the free text of a certificate to its columns.
func (c *Certificate) fit() {
	c.Owner = truncate(c.Owner, 255)
	c.Organization = truncate(c.Organization, 255)
	c.Issuer = truncate(c.Issuer, 255)
	c.SNILS = truncate(c.SNILS, 16)
	c.INN = truncate(c.INN, 16)
	c.INNLE = truncate(c.INNLE, 16)
	c.OGRN = truncate(c.OGRN, 16)
	c.OGRNIP = truncate(c.OGRNIP, 16)
	c.Serial = truncate(c.Serial, 128)
}

// prepareCertificateLink fills the ids and times of a link about to be written.
func (s *Store) prepareCertificateLink(id *Identity, cert *Certificate) {
	now := s.now()
	if id.ID == "" {
		id.ID = NewID()
	}
	if id.CreatedAt.IsZero() {
		id.CreatedAt = now
	}
	id.Connector, id.Subject = ConnectorCertificate, cert.Thumbprint
	id.DisplayName = truncate(id.DisplayName, 255)
	cert.IdentityID, cert.UserID, cert.CreatedAt = id.ID, id.UserID, id.CreatedAt
	cert.Identity = nil // written by hand, in order
	cert.fit()
}

// createCertificateLink writes the identity and the certificate in tx.
func createCertificateLink(tx *gorm.DB, id *Identity, cert *Certificate) error {
	if err := tx.Create(id).Error; err != nil {
		return err
	}
	return tx.Omit("Identity").Create(cert).Error
}

// LinkCertificate links cert to the account id.UserID: the identity (connector
// "certificate", subject the thumbprint) and the certificate row, in one transaction.
// A certificate linked to any account already is ErrConflict and nothing is written.
func (s *Store) LinkCertificate(ctx context.Context, id *Identity, cert *Certificate) error {
	s.prepareCertificateLink(id, cert)
	err := s.tx(ctx, func(tx *gorm.DB) error { return createCertificateLink(tx, id, cert) })
	return mapErr(err, "link certificate")
}

// CreateUserWithCertificate creates an account, its consents and the link of its
// certificate in one transaction: a taken phone, email or certificate is ErrConflict
// and nothing is written, so there is never an account without its certificate.
func (s *Store) CreateUserWithCertificate(ctx context.Context, u *User, consents []Consent, id *Identity, cert *Certificate) error {
	if u.ID == "" {
		u.ID = NewID()
	}
	id.UserID = u.ID
	s.prepareCertificateLink(id, cert)
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := createUserTx(tx, u, consents); err != nil {
			return err
		}
		return createCertificateLink(tx, id, cert)
	})
	return mapErr(err, "create user with certificate")
}

// CertificateByThumbprint finds a linked certificate.
func (s *Store) CertificateByThumbprint(ctx context.Context, thumbprint string) (*Certificate, error) {
	var c Certificate
	err := s.db.WithContext(ctx).Where("thumbprint = ?", thumbprint).Take(&c).Error
	return &c, mapErr(err, "load certificate")
}

// CertificatesBySNILS lists the linked certificates of one person (SNILS), oldest first.
// An empty SNILS matches nothing.
func (s *Store) CertificatesBySNILS(ctx context.Context, snils string) ([]Certificate, error) {
	if snils == "" {
		return nil, nil
	}
	var out []Certificate
	err := s.db.WithContext(ctx).Where("snils = ?", snils).Order("created_at, identity_id").Find(&out).Error
	return out, mapErr(err, "list certificates by SNILS")
}

// UserCertificates lists an account's linked certificates, oldest first.
func (s *Store) UserCertificates(ctx context.Context, userID string) ([]Certificate, error) {
	var out []Certificate
	err := s.db.WithContext(ctx).Where("user_id = ?", userID).Order("created_at, identity_id").Find(&out).Error
	return out, mapErr(err, fmt.Sprintf("list certificates of %q", userID))
}
