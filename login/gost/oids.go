package gost

import (
	"encoding/asn1"

	"github.com/ddulesov/gogost/gost3410"
)

// Object identifiers (TC 26 recommendations, RFC 7091, RFC 9215, RFC 5652).
var (
	oidGOST256Key  = asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 1, 1}
	oidGOST512Key  = asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 1, 2}
	oidGOST256Sig  = asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 3, 2}
	oidGOST512Sig  = asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 3, 3}
	oidStreebog256 = asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 2, 2}
	oidStreebog512 = asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 2, 3}

	oidRSA           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA256RSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384RSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512RSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidECPublicKey   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidECDSASHA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}

	oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}

	// CRL and CRL entry extensions (RFC 5280 §5.2, §5.3).
	oidCRLNumber                = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidReasonCode               = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidInvalidityDate           = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidDeltaCRLIndicator        = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidAuthorityKeyID           = asn1.ObjectIdentifier{2, 5, 29, 35}

	// Russian subject attributes (Приказ ФСБ № 795).
	oidSNILS  = asn1.ObjectIdentifier{1, 2, 643, 100, 3}
	oidOGRN   = asn1.ObjectIdentifier{1, 2, 643, 100, 1}
	oidOGRNIP = asn1.ObjectIdentifier{1, 2, 643, 100, 5}
	oidINN    = asn1.ObjectIdentifier{1, 2, 643, 3, 131, 1, 1}
	oidINNLE  = asn1.ObjectIdentifier{1, 2, 643, 100, 4}
)

// paramSet is a GOST R 34.10-2012 curve as an OID names it.
type paramSet struct {
	name  string
	oid   asn1.ObjectIdentifier
	mode  gost3410.Mode
	curve func() *gost3410.Curve
}

// paramSets lists every curve we accept. The 256-bit tc26 sets B, C and D are
// the CryptoPro A, B and C curves under new names, and XchA/XchB are CryptoPro
// A/C again; certificates in the wild use all of these OIDs.
//
// gogost's Curve keeps scratch space inside itself, so a Curve is not safe for
// concurrent use: callers build a fresh one per operation from curve().
var paramSets = []*paramSet{
	{"tc26-256-A", asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 1, 1}, gost3410.Mode2001, gost3410.CurveIdtc26gost34102012256paramSetA},
	{"tc26-256-B", asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 1, 2}, gost3410.Mode2001, gost3410.CurveIdGostR34102001CryptoProAParamSet},
	{"tc26-256-C", asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 1, 3}, gost3410.Mode2001, gost3410.CurveIdGostR34102001CryptoProBParamSet},
	{"tc26-256-D", asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 1, 4}, gost3410.Mode2001, gost3410.CurveIdGostR34102001CryptoProCParamSet},
	{"CryptoPro-A", asn1.ObjectIdentifier{1, 2, 643, 2, 2, 35, 1}, gost3410.Mode2001, gost3410.CurveIdGostR34102001CryptoProAParamSet},
	{"CryptoPro-B", asn1.ObjectIdentifier{1, 2, 643, 2, 2, 35, 2}, gost3410.Mode2001, gost3410.CurveIdGostR34102001CryptoProBParamSet},
	{"CryptoPro-C", asn1.ObjectIdentifier{1, 2, 643, 2, 2, 35, 3}, gost3410.Mode2001, gost3410.CurveIdGostR34102001CryptoProCParamSet},
	{"CryptoPro-XchA", asn1.ObjectIdentifier{1, 2, 643, 2, 2, 36, 0}, gost3410.Mode2001, gost3410.CurveIdGostR34102001CryptoProXchAParamSet},
	{"CryptoPro-XchB", asn1.ObjectIdentifier{1, 2, 643, 2, 2, 36, 1}, gost3410.Mode2001, gost3410.CurveIdGostR34102001CryptoProXchBParamSet},
	{"tc26-512-A", asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 2, 1}, gost3410.Mode2012, gost3410.CurveIdtc26gost341012512paramSetA},
	{"tc26-512-B", asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 2, 2}, gost3410.Mode2012, gost3410.CurveIdtc26gost341012512paramSetB},
	{"tc26-512-C", asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 2, 3}, gost3410.Mode2012, gost3410.CurveIdtc26gost34102012512paramSetC},
}

func findParamSet(oid asn1.ObjectIdentifier) *paramSet {
	for _, p := range paramSets {
		if p.oid.Equal(oid) {
			return p
		}
	}
	return nil
}
