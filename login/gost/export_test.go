package gost

import "encoding/asn1"

// Exports for the external tests (package gost_test), which need gosttest.

// BERToDER is berToDER.
var BERToDER = berToDER

// ParseCRL is parseCRL; the result tells whether the CRL may serve as a
// complete CRL.
func ParseCRL(b []byte) (complete bool, err error) {
	c, err := parseCRL(b)
	if err != nil {
		return false, err
	}
	return c.incomplete == nil, nil
}

// SignedAttrsDER is signedAttrs: contentType, signingTime and messageDigest
// as the DER SET OF that is signed.
var SignedAttrsDER = signedAttrs

// Variant changes what SignVariant writes; the zero value is SignDetached.
type Variant struct {
	Attrs        func(digest []byte) ([]byte, error) // the signed attributes as a DER SET OF
	EContentType asn1.ObjectIdentifier
	SKI          bool // name the signer by subjectKeyIdentifier
}

// SignVariant is SignDetached with the changes v asks for.
func SignVariant(k *PrivateKey, cert *Certificate, content []byte, v Variant) ([]byte, error) {
	return signDetached(k, cert, content, signOptions{attrs: v.Attrs, eType: v.EContentType, ski: v.SKI})
}
