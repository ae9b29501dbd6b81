package storage

import (
	"context"
	"fmt"

	"gorm.io/gorm/clause"
)

// CreateSigningKey inserts a key unless this algorithm already has one for the same
// generation. It reports whether k was inserted: of two nodes rotating at once, one
// inserts and the other reads the winner's key.
func (s *Store) CreateSigningKey(ctx context.Context, k *SigningKey) (bool, error) {
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(k)
	if res.Error != nil {
		return false, mapErr(res.Error, "create signing key")
	}
	return res.RowsAffected == 1, nil
}

// SigningKeys lists the keys of an algorithm that have not left the key set yet,
// newest generation first.
func (s *Store) SigningKeys(ctx context.Context, alg string) ([]SigningKey, error) {
	var keys []SigningKey
	err := s.db.WithContext(ctx).Where("algorithm = ? AND expires_at > ?", alg, s.now()).
		Order("generation DESC").Find(&keys).Error
	return keys, mapErr(err, fmt.Sprintf("list %s signing keys", alg))
}
