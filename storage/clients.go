package storage

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ClientByID loads a registered product.
func (s *Store) ClientByID(ctx context.Context, id string) (*Client, error) {
	var c Client
	err := s.reader(ctx).Where("id = ?", id).Take(&c).Error // every token request reads it
	return &c, mapErr(err, fmt.Sprintf("load client %q", id))
}

// ListClients returns every registered product, by id.
func (s *Store) ListClients(ctx context.Context) ([]Client, error) {
	var out []Client
	err := s.db.WithContext(ctx).Order("id").Find(&out).Error
	return out, mapErr(err, "list clients")
}

// CreateClient registers a product; a taken id is ErrConflict.
func (s *Store) CreateClient(ctx context.Context, c *Client) error {
	return mapErr(s.db.WithContext(ctx).Create(c).Error, fmt.Sprintf("create client %q", c.ID))
}

// DeleteClient removes a product and revokes its tokens.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Where("id = ?", id).Delete(&Client{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		return s.revokeTokensTx(tx, "client_id = ?", id)
	})
	return mapErr(err, fmt.Sprintf("delete client %q", id))
}

// SetClientSecretHash replaces a confidential product's secret hash.
func (s *Store) SetClientSecretHash(ctx context.Context, id, hash string) error {
	res := s.db.WithContext(ctx).Model(&Client{}).Where("id = ?", id).
		Updates(map[string]any{"secret_hash": hash, "updated_at": s.now()})
	if res.Error == nil && res.RowsAffected == 0 {
		res.Error = gorm.ErrRecordNotFound
	}
	return mapErr(res.Error, fmt.Sprintf("set secret of client %q", id))
}

// SyncFileClients makes the clients that came from the clients file exactly the given
// list: new ones are inserted, changed ones updated, ones gone from the file deleted.
// Clients added with the CLI are left alone, but a file client may not take the id of
// one (ErrConflict).
func (s *Store) SyncFileClients(ctx context.Context, clients []Client) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		keep := make([]string, 0, len(clients))
		for i := range clients {
			c := clients[i]
			c.Source = "file"
			var existing Client
			err := tx.Where("id = ?", c.ID).Take(&existing).Error
			switch {
			case err == nil && existing.Source != "file":
				return fmt.Errorf("client %q from the clients file: an admin already added a client with this id: %w", c.ID, ErrConflict)
			case err == nil:
				c.CreatedAt = existing.CreatedAt
			case err != gorm.ErrRecordNotFound:
				return err
			}
			c.UpdatedAt = s.now()
			if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&c).Error; err != nil {
				return err
			}
			keep = append(keep, c.ID)
		}
		q := tx.Where("source = ?", "file")
		if len(keep) > 0 {
			q = q.Where("id NOT IN ?", keep)
		}
		return q.Delete(&Client{}).Error
	})
	return mapErr(err, "sync clients file")
}
