-- Placeholder: number 5 belongs to the announcements migration, written on
-- another branch. The loader refuses gaps, so this empty file holds the place
-- for 0006 until that branch is merged; delete it then.
SELECT 1;
